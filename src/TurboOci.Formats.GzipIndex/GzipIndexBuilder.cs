using TurboOci.Storage;
using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex;

/// <summary>Builds a gzip index from a whole gzip stream in one pass (the uncompressed bytes are discarded).</summary>
public static class GzipIndexBuilder
{
    public static GzipIndexBuildResult Build(Stream compressed, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options = null, IProgress<long>? compressedProgress = null)
    {
        using var indexing = new GzipIndexingStream(compressed, indexOutput, inflaters, codec, options, leaveOpen: true);
        return Drain(indexing, compressedProgress);
    }

    /// <summary>Builds the index of a blob that is in memory (a mapped file), inflating it in place.</summary>
    public static GzipIndexBuildResult Build(IByteView compressed, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options = null, IProgress<long>? compressedProgress = null)
    {
        using var indexing = new GzipIndexingStream(compressed, indexOutput, inflaters, codec, options);
        return Drain(indexing, compressedProgress);
    }

    private static GzipIndexBuildResult Drain(GzipIndexingStream indexing, IProgress<long>? compressedProgress)
    {
        var buffer = new byte[1 << 20];
        while (indexing.Read(buffer) > 0)
        {
            compressedProgress?.Report(indexing.CompressedPosition);
        }

        return indexing.Complete();
    }
}
