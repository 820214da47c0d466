using System.IO.Compression;

namespace TurboOci.Testing.Tar;

/// <summary>How a generated layer is compressed; each yields a different shape of gzip stream.</summary>
public enum LayerCompression
{
    /// <summary>Plain tar (media type ...tar).</summary>
    None,

    /// <summary>One gzip member from .NET's zlib (GZipStream), header time 0.</summary>
    Gzip,

    /// <summary>One gzip member from the real `gzip -n -6` tool.</summary>
    GzipTool,

    /// <summary>
    /// The real `pigz -n -b 128`: one member made of independently compressed 128 KiB blocks, each ended by
    /// an empty stored block (a sync flush), as registries commonly serve.
    /// </summary>
    Pigz,

    /// <summary>Several gzip members concatenated (a new member every <see cref="LayerCompressor.DefaultMemberSize"/> input bytes).</summary>
    MultiMemberGzip,
}

/// <summary>Compresses a stream of tar bytes in one of the <see cref="LayerCompression"/> shapes, streaming.</summary>
public static class LayerCompressor
{
    /// <summary>Uncompressed bytes per member for <see cref="LayerCompression.MultiMemberGzip"/>.</summary>
    public const int DefaultMemberSize = 64 * 1024;

    /// <summary>Pigz block size in KiB (its minimum is 32).</summary>
    public const int PigzBlockKiB = 128;

    /// <summary>
    /// Runs <paramref name="writeUncompressed"/> and writes its bytes, compressed, to <paramref name="output"/>
    /// (not closed).
    /// </summary>
    public static void Compress(Action<Stream> writeUncompressed, Stream output, LayerCompression compression, int memberSize = DefaultMemberSize)
    {
        switch (compression)
        {
            case LayerCompression.None:
                writeUncompressed(output);
                break;
            case LayerCompression.Gzip:
                using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
                {
                    writeUncompressed(gzip);
                }

                break;
            case LayerCompression.GzipTool:
                Tool.RunFilterChecked("gzip", ["-n", "-c", "-6"], writeUncompressed, output);
                break;
            case LayerCompression.Pigz:
                Tool.RunFilterChecked("pigz", ["-n", "-c", "-b", PigzBlockKiB.ToString(System.Globalization.CultureInfo.InvariantCulture)], writeUncompressed, output);
                break;
            case LayerCompression.MultiMemberGzip:
                using (var members = new MultiMemberGzipStream(output, memberSize))
                {
                    writeUncompressed(members);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(compression));
        }
    }

    /// <summary>The OCI media type of a layer compressed this way.</summary>
    public static string MediaType(LayerCompression compression) =>
        compression == LayerCompression.None ? "application/vnd.oci.image.layer.v1.tar" : "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>Decompresses any of the gzip shapes (all members) with the real `gzip -dc`.</summary>
    public static byte[] GunzipWithTool(byte[] compressed)
    {
        using var output = new MemoryStream();
        Tool.RunFilterChecked("gzip", ["-dc"], input => input.Write(compressed), output);
        return output.ToArray();
    }

    /// <summary>Starts a new gzip member every <c>memberSize</c> bytes written.</summary>
    private sealed class MultiMemberGzipStream(Stream output, int memberSize) : Stream
    {
        private GZipStream? _member;
        private long _inMember;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                if (_member is null || _inMember == memberSize)
                {
                    _member?.Dispose(); // writes the member's trailer
                    _member = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
                    _inMember = 0;
                }

                var take = (int)Math.Min(buffer.Length, memberSize - _inMember);
                _member.Write(buffer[..take]);
                _inMember += take;
                buffer = buffer[take..];
            }
        }

        public override void Flush() => _member?.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _member?.Dispose();
                _member = null;
            }

            base.Dispose(disposing);
        }
    }
}
