namespace TurboOci.Storage;

/// <summary>A byte array as a block source: for tests, small metadata and in-memory layers.</summary>
public sealed class MemoryBlockSource : BlockSource
{
    private readonly Memory<byte> _buffer;
    private readonly bool _writable;

    public MemoryBlockSource(Memory<byte> buffer, bool writable = false)
    {
        _buffer = buffer;
        _writable = writable;
    }

    public MemoryBlockSource(byte[] buffer, bool writable = false)
        : this(buffer.AsMemory(), writable)
    {
    }

    public override long Size => _buffer.Length;

    public override bool CanWrite => _writable;

    public ReadOnlyMemory<byte> Buffer => _buffer;

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        if (length == 0)
        {
            return 0; // at or past the end: the contract says 0, and offset may not fit a slice
        }

        _buffer.Span.Slice((int)offset, length).CopyTo(destination);
        return length;
    }

    public override void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        if (!_writable)
        {
            throw new NotSupportedException("This memory source is read-only.");
        }

        CheckWriteRange(offset, source.Length);
        source.CopyTo(_buffer.Span[(int)offset..]);
    }

    public override void Trim(long offset, long length)
    {
        if (!_writable)
        {
            throw new NotSupportedException("This memory source is read-only.");
        }

        CheckWriteRange(offset, length);
        _buffer.Span.Slice((int)offset, (int)length).Clear();
    }
}
