using System.Security.Cryptography;

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

    /// <summary>SHA-256 of stream bytes [<paramref name="start"/>, <paramref name="end"/>), which must be retained.</summary>
    public byte[] Hash(long start, long end)
    {
        if (start < _base || end > End || end < start)
        {
            throw new InvalidOperationException($"span [{start}, {end}) is not retained ([{_base}, {End}))");
        }

        return SHA256.HashData(_buffer.AsSpan((int)(start - _base), (int)(end - start)));
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
