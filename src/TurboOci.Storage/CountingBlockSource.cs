namespace TurboOci.Storage;

/// <summary>
/// Passes reads through to another source and counts them: how a device reports how much of its
/// layer blobs it really read (the point of lazy loading), without the source knowing.
/// </summary>
public sealed class CountingBlockSource(BlockSource inner, bool ownsInner = false) : BlockSource
{
    private long _bytesRead;
    private long _reads;

    public BlockSource Inner => inner;

    /// <summary>Bytes returned by reads so far (a byte read twice counts twice).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Read calls so far.</summary>
    public long Reads => Interlocked.Read(ref _reads);

    public override long Size => inner.Size;

    public override int ReadAt(long offset, Span<byte> destination) => Count(inner.ReadAt(offset, destination));

    public override async ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAtAsync(offset, destination, cancellationToken).ConfigureAwait(false));

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length) => inner.GetExtents(offset, length);

    private int Count(int read)
    {
        Interlocked.Add(ref _bytesRead, read);
        Interlocked.Increment(ref _reads);
        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && ownsInner)
        {
            inner.Dispose();
        }
    }
}
