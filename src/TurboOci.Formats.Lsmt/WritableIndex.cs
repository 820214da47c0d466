using System.Runtime.InteropServices;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// The in-memory index of a writable layer: sorted, non-overlapping entries where a newer entry replaces
/// whatever older entries it overlaps ("last writer wins", splitting an older entry when the new one lies
/// inside it), as overlaybd's ordered map does. Not thread-safe: <see cref="WritableLayer"/> guards it.
/// </summary>
public sealed class WritableIndex
{
    private readonly List<SegmentMapping> _entries = [];

    public int Count => _entries.Count;

    /// <summary>The current entries, sorted. Valid until the next <see cref="Insert"/>.</summary>
    public ReadOnlySpan<SegmentMapping> Entries => CollectionsMarshal.AsSpan(_entries);

    /// <summary>Sectors of stored data the live entries reference.</summary>
    public ulong DataSectors => SegmentIndex.CountDataSectors(Entries);

    /// <summary>Inserts <paramref name="mapping"/>, trimming or removing the parts of older entries it covers.</summary>
    public void Insert(SegmentMapping mapping)
    {
        if (mapping.Length == 0)
        {
            return;
        }

        var entries = Entries;
        var first = SegmentIndex.FindFirst(entries, mapping.Offset);
        var last = first;
        while (last < entries.Length && entries[last].Offset < mapping.End)
        {
            last++;
        }

        // Entries [first, last) overlap the new one; keep the parts sticking out at either end.
        Span<SegmentMapping> replacement = stackalloc SegmentMapping[3];
        var count = 0;
        if (first < last && entries[first].Offset < mapping.Offset)
        {
            replacement[count++] = entries[first].Trim(entries[first].Offset, mapping.Offset);
        }

        replacement[count++] = mapping;
        if (first < last && entries[last - 1].End > mapping.End)
        {
            replacement[count++] = entries[last - 1].Trim(mapping.End, entries[last - 1].End);
        }

        var overlapped = last - first;
        var common = Math.Min(overlapped, count);
        for (var i = 0; i < common; i++)
        {
            _entries[first + i] = replacement[i];
        }

        if (overlapped > count)
        {
            _entries.RemoveRange(first + count, overlapped - count);
        }
        else if (count > overlapped)
        {
            _entries.InsertRange(first + common, replacement[common..count].ToArray());
        }
    }

    /// <summary>A copy of the entries, for a snapshot view.</summary>
    public SegmentMapping[] ToArray() => [.. _entries];
}
