namespace TurboOci.Storage;

/// <summary>
/// A source of <see cref="Size"/> zero bytes that stores nothing: the bottom of a layer stack
/// with no layers, a placeholder for an absent target, or a test input for a huge sparse disk.
/// </summary>
public sealed class ZeroBlockSource : BlockSource
{
    private readonly long _size;

    public ZeroBlockSource(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        _size = size;
    }

    public override long Size => _size;

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        destination[..length].Clear();
        return length;
    }

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length)
    {
        var end = Math.Min(_size, offset + length);
        if (end > offset)
        {
            yield return new BlockExtent(offset, end - offset, ExtentKind.Zero);
        }
    }
}
