using TurboOci.Storage.Compression;

namespace TurboOci.Interop.Zlib;

/// <summary>
/// The system zlib (<c>libz.so.1</c>, Debian 12: 1.2.13), the same library overlaybd links, so that
/// indexes we write are byte for byte the ones overlaybd writes. .NET's own zlib-ng would compress
/// windows differently.
/// </summary>
public sealed unsafe class SystemZlib : IInflaterFactory, IZlibBlockCodec
{
    public static SystemZlib Instance { get; } = new();

    /// <summary>The loaded library's version, such as "1.2.13".</summary>
    public static string Version => ZlibNative.VersionString;

    public IRawInflater Create(InflateWrapper wrapper) => new ZlibInflater(wrapper);

    public int CompressBound(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);

        // zlib's compressBound plus nothing: deflate(Z_FINISH) in one call never needs more.
        return checked(length + (length >> 12) + (length >> 14) + (length >> 25) + 13);
    }

    public int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        using var handle = new ZStreamHandle(deflate: true);
        var stream = handle.Stream;
        var code = ZlibNative.DeflateInit(stream, level, ZlibNative.Version, ZlibNative.StreamSize);
        if (code != ZlibNative.ZOk)
        {
            throw new ArgumentException($"zlib deflateInit({level}) failed: {ZlibNative.Describe(null, code)}", nameof(level));
        }

        handle.MarkInitialized();
        fixed (byte* inPtr = source)
        fixed (byte* outPtr = destination)
        {
            stream->NextIn = inPtr;
            stream->AvailIn = (uint)source.Length;
            stream->NextOut = outPtr;
            stream->AvailOut = (uint)destination.Length;
            code = ZlibNative.Deflate(stream, ZlibNative.ZFinish);
            var written = destination.Length - (int)stream->AvailOut;
            stream->NextIn = null;
            stream->NextOut = null;
            if (code != ZlibNative.ZStreamEnd)
            {
                throw new ArgumentException($"zlib deflate did not finish ({ZlibNative.Describe(stream, code)}): destination of {destination.Length} bytes too small?", nameof(destination));
            }

            return written;
        }
    }

    public int TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        // windowBits 15: the zlib wrapper only, as overlaybd's inflateInit reads these pieces.
        using var inflater = new ZlibInflater(InflateWrapper.GzipOrZlib, windowBits: 15);
        try
        {
            var result = inflater.Inflate(source, destination, InflateFlush.NoFlush);
            if (result.Status != InflateStatus.StreamEnd || result.Consumed != source.Length)
            {
                return -1;
            }

            return result.Produced;
        }
        catch (InvalidDataException)
        {
            return -1;
        }
    }
}
