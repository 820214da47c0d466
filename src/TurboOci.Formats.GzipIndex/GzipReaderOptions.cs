namespace TurboOci.Formats.GzipIndex;

/// <summary>Tuning of <see cref="GzipIndexedSource"/>.</summary>
public sealed record GzipReaderOptions
{
    /// <summary>Byte budget of the decompressed-span cache; 0 turns it off.</summary>
    public long CacheBytes { get; init; } = 64L << 20;

    /// <summary>How many spans one large read may inflate at once.</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Spans longer than this (huge deflate blocks, e.g. long zero runs from unusual encoders) are
    /// never held whole in memory: reads stream through them from their access point instead.
    /// </summary>
    public int MaxMaterializedSpan { get; init; } = 32 << 20;

    /// <summary>With span digests, a span's compressed bytes are read whole and hashed before inflating; longer spans fail.</summary>
    public int MaxVerifiedCompressedSpan { get; init; } = 256 << 20;
}
