namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// The compressed bytes from the start of the current span up to where the builder has read, so
/// that a span's SHA-256 can be taken once its end is known (entries are chosen one candidate late).
/// </summary>
internal sealed class RetainedBytes
{
    private byte[] _buffer = new byte[1 << 20];
    private int _length;
    private long _base;

    /// <summary>Stream offset one past the last retained byte.</summary>
    public long End => _base + _length;

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (_length + bytes.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(checked(_length + bytes.Length), _buffer.Length * 2));
        }

        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    /// <summary>Copies stream bytes from <paramref name="start"/> on, which must be retained, to fill <paramref name="destination"/>.</summary>
    public void CopyTo(long start, Span<byte> destination)
    {
        if (start < _base || start + destination.Length > End)
        {
            throw new InvalidOperationException($"[{start}, {start + destination.Length}) is not retained ([{_base}, {End}))");
        }

        _buffer.AsSpan((int)(start - _base), destination.Length).CopyTo(destination);
    }

    /// <summary>Up to <paramref name="maxLength"/> retained bytes from stream offset <paramref name="start"/> on.</summary>
    public ReadOnlySpan<byte> Slice(long start, int maxLength)
    {
        if (start < _base || start > End)
        {
            throw new InvalidOperationException($"offset {start} is not retained ([{_base}, {End}))");
        }

        var offset = (int)(start - _base);
        return _buffer.AsSpan(offset, Math.Min(maxLength, _length - offset));
    }

    /// <summary>Forgets bytes before <paramref name="offset"/>.</summary>
    public void DropBefore(long offset)
    {
        var drop = (int)Math.Clamp(offset - _base, 0, _length);
        _buffer.AsSpan(drop, _length - drop).CopyTo(_buffer);
        _length -= drop;
        _base += drop;
    }
}
