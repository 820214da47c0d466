namespace TurboOci.Storage;

/// <summary>Helpers over <see cref="BlockExtent"/> lists: coalescing, and copying only the data of a source.</summary>
public static class BlockExtents
{
    /// <summary>Joins touching extents of the same kind and drops empty ones, keeping the order.</summary>
    public static IEnumerable<BlockExtent> Coalesce(IEnumerable<BlockExtent> extents)
    {
        BlockExtent? pending = null;
        foreach (var extent in extents)
        {
            if (extent.Length == 0)
            {
                continue;
            }

            if (pending is { } p && p.Kind == extent.Kind && p.End == extent.Offset)
            {
                pending = p with { Length = p.Length + extent.Length };
                continue;
            }

            if (pending is { } done)
            {
                yield return done;
            }

            pending = extent;
        }

        if (pending is { } last)
        {
            yield return last;
        }
    }

    /// <summary>
    /// Copies every data extent of <paramref name="source"/> to the same offset of <paramref name="destination"/>,
    /// leaving ranges that are (or are found to be) all zeros unwritten: on a freshly sized sparse file they
    /// stay holes. Returns the number of bytes written.
    /// </summary>
    /// <param name="progress">Called with the number of source bytes visited so far, for progress display.</param>
    public static long CopyData(BlockSource source, BlockSource destination, int chunkSize = 1 << 20,
        Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 4096);
        if (destination.Size < source.Size)
        {
            throw new ArgumentException($"destination ({destination.Size} bytes) is smaller than the source ({source.Size} bytes)", nameof(destination));
        }

        var buffer = new byte[chunkSize];
        var written = 0L;
        foreach (var extent in Coalesce(source.GetExtents(0, source.Size)))
        {
            if (extent.Kind == ExtentKind.Data)
            {
                for (var position = extent.Offset; position < extent.End;)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var chunk = buffer.AsSpan(0, (int)Math.Min(chunkSize, extent.End - position));
                    source.ReadExactlyAt(position, chunk);
                    written += WriteNonZeroRuns(destination, position, chunk);
                    position += chunk.Length;
                    progress?.Invoke(position);
                }
            }

            progress?.Invoke(extent.End);
        }

        return written;
    }

    /// <summary>Writes the 4 KiB-granular non-zero runs of <paramref name="data"/> at <paramref name="offset"/>.</summary>
    private static long WriteNonZeroRuns(BlockSource destination, long offset, ReadOnlySpan<byte> data)
    {
        const int Granule = 4096;
        var written = 0L;
        var runStart = -1;
        for (var i = 0; i < data.Length; i += Granule)
        {
            var granule = data.Slice(i, Math.Min(Granule, data.Length - i));
            var isZero = !granule.ContainsAnyExcept((byte)0);
            if (!isZero && runStart < 0)
            {
                runStart = i;
            }
            else if (isZero && runStart >= 0)
            {
                destination.WriteAt(offset + runStart, data[runStart..i]);
                written += i - runStart;
                runStart = -1;
            }
        }

        if (runStart >= 0)
        {
            destination.WriteAt(offset + runStart, data[runStart..]);
            written += data.Length - runStart;
        }

        return written;
    }
}
