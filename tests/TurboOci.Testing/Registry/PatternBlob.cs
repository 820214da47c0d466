using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace TurboOci.Testing.Registry;

/// <summary>
/// A large test blob that is never held in memory: every 8-byte word is a SplitMix64 hash of its position
/// and a seed, so any range can be regenerated anywhere (test, child process, comparison) in about a
/// nanosecond per word, and no two ranges of the blob look alike (a byte served from the wrong offset shows).
/// </summary>
public sealed class PatternBlob
{
    private readonly ulong _seed;
    private string? _digest;

    public PatternBlob(long size, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        Size = size;
        _seed = seed;
    }

    public long Size { get; }

    /// <summary>The blob's <c>sha256:...</c> digest (computed once, by streaming the pattern).</summary>
    public string Digest
    {
        get
        {
            if (_digest is null)
            {
                using var stream = OpenRead();
                _digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
            }

            return _digest;
        }
    }

    /// <summary>Writes the blob's bytes at <paramref name="offset"/> into <paramref name="destination"/> (which must not run past the end).</summary>
    public void Fill(long offset, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(checked(offset + destination.Length), Size);
        Span<byte> word = stackalloc byte[8];

        // Unaligned head, then whole words straight into the destination, then an unaligned tail.
        var head = (int)Math.Min((8 - offset % 8) % 8, destination.Length);
        if (head > 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, Word(offset / 8));
            word.Slice((int)(offset % 8), head).CopyTo(destination);
        }

        var body = destination[head..];
        var firstWord = (offset + head) / 8;
        var words = MemoryMarshal.Cast<byte, ulong>(body[..(body.Length / 8 * 8)]);
        for (var i = 0; i < words.Length; i++)
        {
            var value = Word(firstWord + i);
            words[i] = BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value);
        }

        var tail = body[(words.Length * 8)..];
        if (tail.Length > 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, Word(firstWord + words.Length));
            word[..tail.Length].CopyTo(tail);
        }
    }

    public byte[] Read(long offset, int length)
    {
        var data = new byte[length];
        Fill(offset, data);
        return data;
    }

    /// <summary>True when <paramref name="data"/> is exactly the blob's bytes at <paramref name="offset"/>.</summary>
    public bool Matches(long offset, ReadOnlySpan<byte> data) =>
        offset >= 0 && offset + data.Length <= Size && Read(offset, data.Length).AsSpan().SequenceEqual(data);

    /// <summary>A seekable read-only stream of the whole blob (for pushing and hashing).</summary>
    public Stream OpenRead() => new PatternStream(this);

    private ulong Word(long index)
    {
        var z = _seed + (ulong)index * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private sealed class PatternStream(PatternBlob blob) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => blob.Size;

        public override long Position
        {
            get => _position;
            set => _position = Math.Clamp(value, 0, blob.Size);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var count = (int)Math.Min(buffer.Length, blob.Size - _position);
            blob.Fill(_position, buffer[..count]);
            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override long Seek(long offset, SeekOrigin origin) =>
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => blob.Size + offset,
            };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
