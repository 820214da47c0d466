namespace TurboOci.Formats.GzipIndex;

/// <summary>How an index is built. The defaults are overlaybd's (§4.4), which give its bytes exactly.</summary>
public sealed record GzipIndexOptions
{
    /// <summary>overlaybd refuses spans below 64 KiB (the largest uncompressed deflate output it buffers).</summary>
    public const int MinSpan = 65536;

    public const int DefaultSpan = 1 << 20;

    /// <summary>Target distance between access points in uncompressed bytes.</summary>
    public int Span { get; init; } = DefaultSpan;

    /// <summary>zlib level for the stored windows and the entry area (−1..9).</summary>
    public int Level { get; init; } = 6;

    /// <summary>Store windows and entries as zlib streams (algo 1, overlaybd's default) or raw (algo 0).</summary>
    public bool CompressWindows { get; init; } = true;

    /// <summary>
    /// Zero the window bytes that the deflate data after each point never reads (our extension, off by default):
    /// windows then compress several times smaller, and any reader, overlaybd's included, inflates exactly the
    /// same bytes from them. The file is no longer overlaybd's byte for byte; the header is unchanged.
    /// </summary>
    public bool SparseWindows { get; init; }

    /// <summary>Also compute <see cref="GzipSpanDigests"/> (SHA-256 of each span's compressed bytes, CRC-32 of its output).</summary>
    public bool SpanDigests { get; init; }

    internal void Validate()
    {
        if (Span < MinSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(Span), Span, $"span must be at least {MinSpan} bytes, as overlaybd requires");
        }

        if (Level is < -1 or > 9)
        {
            throw new ArgumentOutOfRangeException(nameof(Level), Level, "zlib level must be in -1..9");
        }
    }
}

/// <summary>What a build produced.</summary>
/// <param name="Header">The header written at offset 0 of the index.</param>
/// <param name="Members">How many gzip members the blob holds (overlaybd indexes only the first; we index all).</param>
/// <param name="TrailingBytes">Bytes after the last member that are not gzip data (ignored, as gzip does).</param>
/// <param name="Spans">The span digests, when asked for.</param>
public sealed record GzipIndexBuildResult(GzipIndexHeader Header, int Members, long TrailingBytes, GzipSpanDigests? Spans);
