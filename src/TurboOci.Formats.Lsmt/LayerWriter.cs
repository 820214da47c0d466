using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>What a commit or merge records in the new layer's header and trailer.</summary>
public sealed record CommitOptions
{
    /// <summary>The new layer's uuid; null writes the null UUID (overlaybd's default).</summary>
    public string? Uuid { get; init; }

    /// <summary>The parent uuid; null keeps the source's parent (an RW layer's header), or null for a merge.</summary>
    public string? ParentUuid { get; init; }

    /// <summary>The commit message (user tag), at most 256 bytes of UTF-8.</summary>
    public string? Message { get; init; }
}

/// <summary>Reads the stored data of one (trimmed) source entry into the destination.</summary>
public delegate void EntryDataReader(in SegmentMapping entry, Span<byte> destination);

/// <summary>
/// Writes committed layers (formats doc §1.4, overlaybd's <c>compact</c>): header, the data of every non-zeroed
/// entry in index order, the folded index padded to 256 entries, trailer. Written strictly sequentially so it
/// can be streamed into a compressor. Warp commits (§1.6.2) keep tag-1 entries verbatim and do not pad.
/// </summary>
public static class LayerWriter
{
    private const int CopyChunkSectors = 2048;

    /// <summary>The result of a commit: where the index went and how many entries it holds (padding included).</summary>
    public readonly record struct CommitResult(long Length, long IndexOffset, int RealEntries, int IndexEntries);

    /// <param name="sorted">Source entries, sorted and non-overlapping; for a merge, tags say which layer they came from and are kept.</param>
    /// <param name="readData">Reads a source entry's data (only called for entries whose data is copied).</param>
    public static CommitResult WriteCommitted(Stream output, ReadOnlySpan<SegmentMapping> sorted, EntryDataReader readData,
        ulong virtualSize, string uuid, string parentUuid, string? message, bool warp = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        var tag = EncodeMessage(message);
        var block = new byte[LsmtConstants.HeaderBlockSize];
        new LsmtHeader(LsmtFlags.Header | LsmtFlags.DataFile | LsmtFlags.Sealed, 0, 0, virtualSize, uuid, parentUuid, tag).Write(block);
        output.Write(block);

        var emitted = new SegmentMapping[sorted.Length];
        var buffer = new byte[CopyChunkSectors * LsmtConstants.SectorSize];
        var position = (ulong)LsmtConstants.FirstDataSector;
        for (var i = 0; i < sorted.Length; i++)
        {
            var entry = sorted[i];
            if (warp && entry.Tag == 1 && !entry.Zeroed)
            {
                emitted[i] = entry; // remote data stays in the target: keep the tar offset
                continue;
            }

            emitted[i] = entry.WithMappedOffset(position);
            if (entry.Zeroed)
            {
                continue;
            }

            for (var start = entry.Offset; start < entry.End; start += CopyChunkSectors)
            {
                var piece = entry.Trim(start, Math.Min(entry.End, start + CopyChunkSectors));
                var bytes = buffer.AsSpan(0, (int)piece.Length * LsmtConstants.SectorSize);
                readData(piece, bytes);
                output.Write(bytes);
            }

            position += entry.Length;
        }

        var folded = SegmentIndex.Compress(emitted);
        var realEntries = folded.Count;
        if (!warp)
        {
            while (folded.Count % LsmtConstants.IndexPaddingEntries != 0)
            {
                folded.Add(SegmentMapping.Padding);
            }
        }

        if ((ulong)folded.Count > LsmtConstants.MaxReadOnlyIndexEntries)
        {
            throw new InvalidOperationException(
                $"the committed index would hold {folded.Count} entries; overlaybd reads at most {LsmtConstants.MaxReadOnlyIndexEntries}");
        }

        var indexOffset = checked((long)position * LsmtConstants.SectorSize);
        var indexBytes = new byte[folded.Count * SegmentMapping.Size];
        SegmentMapping.WriteAll(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(folded), indexBytes);
        output.Write(indexBytes);

        new LsmtHeader(LsmtFlags.DataFile | LsmtFlags.Sealed, (ulong)indexOffset, (ulong)folded.Count, virtualSize, uuid, parentUuid, tag).Write(block);
        output.Write(block);
        output.Flush();
        return new CommitResult(indexOffset + indexBytes.Length + LsmtConstants.HeaderBlockSize, indexOffset, realEntries, folded.Count);
    }

    /// <summary>Merges a stack into one committed layer (overlaybd-merge): its merged index, tags (source levels) kept on disk.</summary>
    public static CommitResult WriteMerged(Stream output, LayerStack stack, CommitOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stack);
        options ??= new CommitOptions();
        return WriteCommitted(output, stack.Index.Entries, stack.ReadMergedEntry, (ulong)stack.Size,
            options.Uuid ?? LsmtUuid.Null, options.ParentUuid ?? LsmtUuid.Null, options.Message);
    }

    internal static byte[] EncodeMessage(string? message)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(message ?? string.Empty);
        if (bytes.Length > LsmtConstants.UserTagSize)
        {
            throw new ArgumentException($"the commit message is {bytes.Length} bytes; LSMT stores at most {LsmtConstants.UserTagSize}");
        }

        return bytes;
    }
}
