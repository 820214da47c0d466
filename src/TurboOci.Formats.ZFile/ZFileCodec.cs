using K4os.Compression.LZ4;
using ZstdSharp;

namespace TurboOci.Formats.ZFile;

/// <summary>
/// The two block codecs exactly as overlaybd calls them: LZ4 raw blocks
/// (<c>LZ4_compress_default</c> / <c>LZ4_decompress_safe</c>) and whole zstd frames at level 3
/// (<c>ZSTD_compress</c> / <c>ZSTD_decompress</c>). zstd contexts are not thread-safe, so each
/// thread keeps its own.
/// </summary>
internal static class ZFileCodec
{
    /// <summary>The zstd level overlaybd always uses, whatever the header's level byte says.</summary>
    public const int ZstdLevel = 3;

    [ThreadStatic]
    private static Compressor? t_zstdCompressor;

    [ThreadStatic]
    private static Decompressor? t_zstdDecompressor;

    /// <summary>The most bytes a block of <paramref name="blockSize"/> can compress to (the codecs' bound functions).</summary>
    public static int MaxCompressedLength(ZFileAlgorithm algorithm, int blockSize) => algorithm switch
    {
        ZFileAlgorithm.Lz4 => LZ4Codec.MaximumOutputSize(blockSize),
        // ZSTD_COMPRESSBOUND: srcSize + srcSize/256 + a margin for small inputs.
        ZFileAlgorithm.Zstd => blockSize + (blockSize >> 8) + (blockSize < (128 << 10) ? ((128 << 10) - blockSize) >> 11 : 0),
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unknown ZFile algorithm"),
    };

    /// <summary>Compresses one block; returns the compressed length.</summary>
    public static int Compress(ZFileAlgorithm algorithm, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        switch (algorithm)
        {
            case ZFileAlgorithm.Lz4:
                var written = LZ4Codec.Encode(source, destination, LZ4Level.L00_FAST);
                if (written <= 0)
                {
                    throw new InvalidOperationException($"LZ4 could not compress a {source.Length}-byte block into {destination.Length} bytes");
                }

                return written;
            case ZFileAlgorithm.Zstd:
                t_zstdCompressor ??= new Compressor(ZstdLevel);
                return t_zstdCompressor.Wrap(source, destination);
            default:
                throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unknown ZFile algorithm");
        }
    }

    /// <summary>Decompresses one block; returns the decompressed length, or -1 when the data is not valid for the codec.</summary>
    public static int Decompress(ZFileAlgorithm algorithm, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        switch (algorithm)
        {
            case ZFileAlgorithm.Lz4:
                return LZ4Codec.Decode(source, destination);
            case ZFileAlgorithm.Zstd:
                t_zstdDecompressor ??= new Decompressor();
                try
                {
                    return t_zstdDecompressor.TryUnwrap(source, destination, out var written) ? written : -1;
                }
                catch (ZstdException)
                {
                    return -1; // corrupt frame: the caller reports which block and where
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unknown ZFile algorithm");
        }
    }
}
