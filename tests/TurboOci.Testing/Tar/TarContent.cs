using System.Security.Cryptography;

namespace TurboOci.Testing.Tar;

/// <summary>
/// The data of a regular file in a generated layer, produced on demand as a stream so that a file larger
/// than memory (a &gt; 4 GiB file of zeros) is never held in memory.
/// </summary>
public abstract class TarContent
{
    private byte[]? _sha256;

    /// <summary>The exact number of bytes <see cref="Open"/> yields.</summary>
    public abstract long Length { get; }

    /// <summary>A new stream over the content, positioned at its start.</summary>
    public abstract Stream Open();

    /// <summary>The content's SHA-256, computed once by streaming it.</summary>
    public byte[] Sha256()
    {
        if (_sha256 is null)
        {
            using var stream = Open();
            _sha256 = SHA256.HashData(stream);
        }

        return _sha256;
    }

    /// <summary>Exactly these bytes.</summary>
    public static TarContent Bytes(byte[] bytes) => new BytesContent(bytes);

    /// <summary>The UTF-8 bytes of <paramref name="text"/>.</summary>
    public static TarContent Text(string text) => new BytesContent(System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary><paramref name="length"/> zero bytes, generated while streaming (like a sparse source file).</summary>
    public static TarContent Zeros(long length) => new ZeroContent(length);

    /// <summary>
    /// <paramref name="length"/> pseudo-random bytes that are the same for the same seed: incompressible data
    /// without storing it.
    /// </summary>
    public static TarContent Pattern(long length, ulong seed) => new PatternContent(length, seed);

    private sealed class BytesContent(byte[] bytes) : TarContent
    {
        public override long Length => bytes.Length;

        public override Stream Open() => new MemoryStream(bytes, writable: false);
    }

    private sealed class ZeroContent(long length) : TarContent
    {
        public override long Length => length;

        public override Stream Open() => new GeneratedStream(length, static (_, buffer) => buffer.Clear());
    }

    private sealed class PatternContent(long length, ulong seed) : TarContent
    {
        public override long Length => length;

        public override Stream Open() => new GeneratedStream(length, (position, buffer) => Fill(seed, position, buffer));

        // Each 8-byte word is a hash (splitmix64) of its index, so any range can be produced independently.
        private static void Fill(ulong seed, long position, Span<byte> buffer)
        {
            var index = position / 8;
            var skip = (int)(position % 8);
            Span<byte> word = stackalloc byte[8];
            var written = 0;
            while (written < buffer.Length)
            {
                var z = unchecked(seed + ((ulong)index * 0x9E3779B97F4A7C15UL));
                z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
                z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
                z ^= z >> 31;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(word, z);
                var take = Math.Min(8 - skip, buffer.Length - written);
                word.Slice(skip, take).CopyTo(buffer[written..]);
                written += take;
                skip = 0;
                index++;
            }
        }
    }

    /// <summary>A read-only stream whose bytes are computed from their position.</summary>
    private sealed class GeneratedStream(long length, Action<long, Span<byte>> fill) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var take = (int)Math.Min(buffer.Length, length - _position);
            if (take <= 0)
            {
                return 0;
            }

            fill(_position, buffer[..take]);
            _position += take;
            return take;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
