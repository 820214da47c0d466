using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// A virtual disk described by an LSMT index: a committed layer, a writable layer, or a stack of layers.
/// Reads of any offset and length walk the sorted entries overlapping the request: data entries read their
/// backing file, zeroed entries read zeros, and gaps read whatever <see cref="ReadGap"/> says (zeros for a
/// read-only layer, the lower layers for a writable one).
/// </summary>
public abstract class MappedLayer : BlockSource, IFileRangeSource
{
    /// <summary>This layer's own uuid (upper-case text; the null UUID when none).</summary>
    public abstract string Uuid { get; }

    /// <summary>The uuid of the layer below as recorded in this layer.</summary>
    public abstract string ParentUuid { get; }

    /// <summary>
    /// The entries this layer contributes when stacked, sorted, tags 0. Reads of them must go through
    /// <see cref="ReadStackData"/>: a layer whose entries use several backing files (a warp layer) exports
    /// identity mappings and resolves them itself, as overlaybd does.
    /// </summary>
    public abstract SegmentMapping[] GetStackEntries();

    /// <summary>Reads the data of a (trimmed) entry from <see cref="GetStackEntries"/>, starting <paramref name="skip"/> bytes into it.</summary>
    protected internal abstract void ReadStackData(in SegmentMapping entry, long skip, Span<byte> destination);

    /// <summary>Reads a range no entry maps: zeros unless overridden.</summary>
    protected virtual void ReadGap(long offset, Span<byte> destination) => destination.Clear();

    /// <summary>Extents of a range no entry maps.</summary>
    protected virtual IEnumerable<BlockExtent> GapExtents(long offset, long length)
    {
        yield return new BlockExtent(offset, length, ExtentKind.Zero);
    }

    /// <summary>Reads the data of one entry of this layer's own index, <paramref name="skip"/> bytes into it.</summary>
    protected abstract void ReadEntryData(in SegmentMapping entry, long skip, Span<byte> destination);

    /// <summary>Reads [offset, offset + destination.Length) through <paramref name="sorted"/>, resolving each data entry with <see cref="ReadEntryData"/>.</summary>
    /// <remarks>Does not clamp to <see cref="BlockSource.Size"/>: public reads clamp first (see <see cref="ReadClamped"/>).</remarks>
    protected void ReadThrough(ReadOnlySpan<SegmentMapping> sorted, long offset, Span<byte> destination)
    {
        var end = offset + destination.Length;
        var position = offset;
        for (var i = SegmentIndex.FindFirst(sorted, (ulong)offset >> LsmtConstants.SectorShift); i < sorted.Length && position < end; i++)
        {
            var entry = sorted[i];
            var entryStart = checked((long)entry.Offset << LsmtConstants.SectorShift);
            if (entryStart >= end)
            {
                break;
            }

            if (entryStart > position)
            {
                ReadGap(position, destination[(int)(position - offset)..(int)(entryStart - offset)]);
                position = entryStart;
            }

            var pieceEnd = Math.Min(end, checked((long)entry.End << LsmtConstants.SectorShift));
            var piece = destination[(int)(position - offset)..(int)(pieceEnd - offset)];
            if (entry.Zeroed)
            {
                piece.Clear();
            }
            else
            {
                ReadEntryData(entry, position - entryStart, piece);
            }

            position = pieceEnd;
        }

        if (position < end)
        {
            ReadGap(position, destination[(int)(position - offset)..]);
        }
    }

    /// <summary>A public read: clamps to <see cref="BlockSource.Size"/>, then reads through <paramref name="sorted"/>.</summary>
    protected int ReadClamped(ReadOnlySpan<SegmentMapping> sorted, long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        ReadThrough(sorted, offset, destination[..length]);
        return length;
    }

    /// <summary>Lists data/zero extents of [offset, offset + length) from <paramref name="sorted"/>, gaps through <see cref="GapExtents"/>.</summary>
    protected IEnumerable<BlockExtent> ExtentsThrough(SegmentMapping[] sorted, long offset, long length)
    {
        var end = Math.Min(Size, offset + length);
        var position = offset;
        for (var i = SegmentIndex.FindFirst(sorted, (ulong)offset >> LsmtConstants.SectorShift); i < sorted.Length && position < end; i++)
        {
            var entry = sorted[i];
            var entryStart = (long)entry.Offset << LsmtConstants.SectorShift;
            if (entryStart >= end)
            {
                break;
            }

            if (entryStart > position)
            {
                foreach (var gap in GapExtents(position, entryStart - position))
                {
                    yield return gap;
                }

                position = entryStart;
            }

            var pieceEnd = Math.Min(end, (long)entry.End << LsmtConstants.SectorShift);
            yield return new BlockExtent(position, pieceEnd - position, entry.Zeroed ? ExtentKind.Zero : ExtentKind.Data);
            position = pieceEnd;
        }

        if (position < end)
        {
            foreach (var gap in GapExtents(position, end - position))
            {
                yield return gap;
            }
        }
    }

    /// <summary>
    /// Where the run at <paramref name="offset"/> is stored (see <see cref="IFileRangeSource"/>): one index lookup
    /// resolves it to a piece of one entry's backing file, a zeroed entry or a gap.
    /// </summary>
    public virtual bool TryGetFileRange(long offset, int length, out FileRange range)
    {
        range = default;
        var clamped = offset < 0 || length <= 0 ? 0 : ClampLength(offset, length);
        return clamped > 0 && TryGetRangeThrough(GetEntriesForRanges(offset, clamped), offset, clamped, out range);
    }

    /// <summary>Sorted entries of the layer's own index that include all those overlapping [offset, offset + length), for <see cref="TryGetFileRange"/>.</summary>
    private protected abstract ReadOnlySpan<SegmentMapping> GetEntriesForRanges(long offset, int length);

    /// <summary>Resolves the first run of [offset, offset + length) through <paramref name="sorted"/>, as <see cref="ReadThrough"/> would read it.</summary>
    protected bool TryGetRangeThrough(ReadOnlySpan<SegmentMapping> sorted, long offset, int length, out FileRange range)
    {
        var i = SegmentIndex.FindFirst(sorted, (ulong)offset >> LsmtConstants.SectorShift);
        if (i < sorted.Length)
        {
            var entry = sorted[i];
            var entryStart = checked((long)entry.Offset << LsmtConstants.SectorShift);
            if (entryStart <= offset)
            {
                var run = (int)Math.Min(length, checked((long)entry.End << LsmtConstants.SectorShift) - offset);
                if (entry.Zeroed)
                {
                    range = FileRange.Zeros(run);
                    return true;
                }

                return TryGetEntryRange(entry, offset - entryStart, run, out range);
            }

            length = (int)Math.Min(length, entryStart - offset);
        }

        return TryGetGapRange(offset, length, out range);
    }

    /// <summary>Where <paramref name="length"/> bytes of an entry's data, <paramref name="skip"/> bytes into it, are stored; false unless overridden.</summary>
    protected virtual bool TryGetEntryRange(in SegmentMapping entry, long skip, int length, out FileRange range)
    {
        range = default;
        return false;
    }

    /// <summary>The run of a range no entry maps: zeros unless overridden (as <see cref="ReadGap"/>).</summary>
    protected virtual bool TryGetGapRange(long offset, int length, out FileRange range)
    {
        range = FileRange.Zeros(length);
        return true;
    }

    /// <summary>Where data of an entry from <see cref="GetStackEntries"/> is stored, as <see cref="ReadStackData"/> reads it; false unless overridden.</summary>
    protected internal virtual bool TryGetStackDataRange(in SegmentMapping entry, long skip, int length, out FileRange range)
    {
        range = default;
        return false;
    }

    /// <summary>
    /// The run of <paramref name="length"/> bytes at <paramref name="position"/> of a backing source, with
    /// <see cref="ReadBacking"/>'s rule: bytes past its end are zeros.
    /// </summary>
    protected static bool TryGetBackingRange(BlockSource backing, long position, int length, out FileRange range)
    {
        if (position >= backing.Size)
        {
            range = FileRange.Zeros(length);
            return true;
        }

        return FileRanges.TryResolve(backing, position, length, out range);
    }

    /// <summary>The byte position <paramref name="skip"/> bytes into an entry's mapped data (open-time checks keep it in range).</summary>
    protected static long MappedPosition(in SegmentMapping entry, long skip) => checked(((long)entry.MappedOffset * LsmtConstants.SectorSize) + skip);

    /// <summary>
    /// Reads <paramref name="destination"/> from <paramref name="backing"/> at <paramref name="position"/>; bytes past the
    /// end of the backing file read as zeros (overlaybd's rule for a short data file).
    /// </summary>
    protected static void ReadBacking(BlockSource backing, long position, Span<byte> destination)
    {
        // Not every source returns 0 past its end (MemoryBlockSource throws for an offset beyond it), so do not ask.
        var read = position >= backing.Size ? 0 : backing.ReadAt(position, destination);
        destination[read..].Clear();
    }
}
