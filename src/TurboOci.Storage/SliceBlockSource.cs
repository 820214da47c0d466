namespace TurboOci.Storage;

/// <summary>
/// A window [start, start+length) of another source, read without copying: how a layer inside a
/// tar envelope, or a span of a blob, is opened.
/// </summary>
public sealed class SliceBlockSource : BlockSource
{
    private readonly BlockSource _inner;
    private readonly long _start;
    private readonly long _length;
    private readonly bool _ownsInner;

    public SliceBlockSource(BlockSource inner, long start, long length, bool ownsInner = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (start > inner.Size || length > inner.Size - start)
        {
            throw new ArgumentOutOfRangeException(nameof(length),
                $"slice [{start}, {start + length}) is outside the source of {inner.Size} bytes");
        }

        _inner = inner;
        _start = start;
        _length = length;
        _ownsInner = ownsInner;
    }

    public override long Size => _length;

    public BlockSource Inner => _inner;

    public long Start => _start;

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        return length == 0 ? 0 : _inner.ReadAt(_start + offset, destination[..length]);
    }

    public override ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var length = ClampLength(offset, destination.Length);
        return length == 0 ? ValueTask.FromResult(0) : _inner.ReadAtAsync(_start + offset, destination[..length], cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsInner)
        {
            _inner.Dispose();
        }
    }
}
