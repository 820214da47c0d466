using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// A read-only LSMT index: entries sorted by offset, non-overlapping, in one flat array of 16-byte
/// entries searched by binary search (formats doc §1.9). Immutable, so any number of threads may
/// look up at once.
/// </summary>
public sealed class SegmentIndex
{
    private readonly SegmentMapping[] _entries;

    /// <summary>Each entry's end, in a dense array of its own: the search touches half the memory of the entries.</summary>
    private readonly ulong[] _ends;

    /// <summary>Wraps entries that the caller guarantees sorted and non-overlapping (see <see cref="CheckOrder"/>).</summary>
    public SegmentIndex(SegmentMapping[] sortedEntries)
    {
        _entries = sortedEntries;
        _ends = new ulong[sortedEntries.Length];
        for (var i = 0; i < sortedEntries.Length; i++)
        {
            _ends[i] = sortedEntries[i].End;
        }
    }

    public static SegmentIndex Empty { get; } = new([]);

    public ReadOnlySpan<SegmentMapping> Entries => _entries;

    internal SegmentMapping[] RawEntries => _entries;

    public int Count => _entries.Length;

    /// <summary>Sectors holding stored data (non-zeroed entries).</summary>
    public ulong DataSectors => CountDataSectors(_entries);

    /// <summary>Sectors of stored data that <paramref name="entries"/> reference (zeroed entries store none).</summary>
    public static ulong CountDataSectors(ReadOnlySpan<SegmentMapping> entries)
    {
        ulong total = 0;
        foreach (var entry in entries)
        {
            total += entry.Zeroed ? 0 : entry.Length;
        }

        return total;
    }

    /// <summary>Index of the first entry whose end lies after <paramref name="sector"/>, or Count.</summary>
    public int FindFirst(ulong sector) =>
        UpperBound<ulong, PlainEnd>(ref MemoryMarshal.GetArrayDataReference(_ends), _ends.Length, sector);

    /// <summary>Index of the first entry of <paramref name="sorted"/> whose end lies after <paramref name="sector"/>.</summary>
    public static int FindFirst(ReadOnlySpan<SegmentMapping> sorted, ulong sector) =>
        UpperBound<SegmentMapping, MappingEnd>(ref MemoryMarshal.GetReference(sorted), sorted.Length, sector);

    /// <summary>
    /// First position whose end is greater than <paramref name="sector"/> (entries do not overlap, so ends are sorted).
    /// Branch-free: the loop runs log2(n) times whatever the data and the conditional move leaves nothing to mispredict.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int UpperBound<T, TEnd>(ref T first, int count, ulong sector)
        where TEnd : struct, IEndOf<T>
    {
        if (count == 0)
        {
            return 0;
        }

        var low = 0;
        while (count > 1)
        {
            var half = count >> 1;
            low = TEnd.Of(Unsafe.Add(ref first, low + half - 1)) <= sector ? low + half : low;
            count -= half;
        }

        return low + (TEnd.Of(Unsafe.Add(ref first, low)) <= sector ? 1 : 0);
    }

    /// <summary>How the search reads an element's end; a struct type argument so the call is inlined.</summary>
    private interface IEndOf<T>
    {
        static abstract ulong Of(in T item);
    }

    private readonly struct PlainEnd : IEndOf<ulong>
    {
        public static ulong Of(in ulong item) => item;
    }

    private readonly struct MappingEnd : IEndOf<SegmentMapping>
    {
        public static ulong Of(in SegmentMapping item) => item.End;
    }

    /// <summary>
    /// Writes the entries overlapping [<paramref name="start"/>, <paramref name="end"/>) sectors, trimmed to it,
    /// into <paramref name="output"/>; returns how many (at most output.Length: call again from the last end for more).
    /// </summary>
    public int Lookup(ulong start, ulong end, Span<SegmentMapping> output)
    {
        var n = 0;
        for (var i = FindFirst(start); i < _entries.Length && n < output.Length; i++)
        {
            var entry = _entries[i];
            if (entry.Offset >= end)
            {
                break;
            }

            output[n++] = entry.Trim(start, end);
        }

        return n;
    }

    /// <summary>
    /// The same ranges as identity mappings (moffset = offset, tag 0): how a layer that resolves its own
    /// backing files (a warp layer, a nested stack) appears in a stack, as overlaybd does.
    /// </summary>
    public static SegmentMapping[] ToIdentity(ReadOnlySpan<SegmentMapping> sorted)
    {
        var identity = new SegmentMapping[sorted.Length];
        for (var i = 0; i < identity.Length; i++)
        {
            identity[i] = new SegmentMapping(sorted[i].Offset, sorted[i].Length, sorted[i].Offset, sorted[i].Zeroed);
        }

        return identity;
    }

    /// <summary>Throws unless entries are sorted by offset and do not overlap (touching allowed).</summary>
    public static void CheckOrder(ReadOnlySpan<SegmentMapping> entries, Func<int, Exception> onError)
    {
        for (var i = 1; i < entries.Length; i++)
        {
            if (entries[i - 1].End > entries[i].Offset)
            {
                throw onError(i);
            }
        }
    }

    /// <summary>
    /// Folds entry j into the previous output entry when they touch logically and physically, have the same
    /// zeroed flag and tag, and the sum stays below 16383 sectors — overlaybd's <c>compress_raw_index</c>, which
    /// every commit applies, so our commits come out byte-identical.
    /// </summary>
    public static List<SegmentMapping> Compress(ReadOnlySpan<SegmentMapping> sorted)
    {
        var output = new List<SegmentMapping>(sorted.Length);
        foreach (var entry in sorted)
        {
            if (output.Count > 0)
            {
                var last = output[^1];
                if (last.End == entry.Offset && last.MappedEnd == entry.MappedOffset && last.Zeroed == entry.Zeroed
                    && last.Tag == entry.Tag && last.Length + entry.Length < LsmtConstants.MaxMappingLength)
                {
                    output[^1] = new SegmentMapping(last.Offset, last.Length + entry.Length, last.MappedOffset, last.Zeroed, last.Tag);
                    continue;
                }
            }

            output.Add(entry);
        }

        return output;
    }

    /// <summary>
    /// Merges layer indexes given top layer first (formats doc §1.7): the top layer's entries win, its gaps are
    /// filled from the next layer, and so on. Each output entry's tag is the level (0 = top) of the layer it
    /// came from; entries are trimmed to the gap they fill. Zeroed entries hide lower layers like data does.
    /// </summary>
    public static SegmentMapping[] MergeLayers(IReadOnlyList<SegmentMapping[]> topFirst, long maxEntries = LsmtConstants.MaxIndexEntries)
    {
        if (topFirst.Count > LsmtConstants.MaxStackLayers + 1)
        {
            throw new ArgumentException($"at most {LsmtConstants.MaxStackLayers} layers can be stacked, got {topFirst.Count}");
        }

        var merged = new List<SegmentMapping>();
        var next = new List<SegmentMapping>();
        for (var level = 0; level < topFirst.Count; level++)
        {
            FillGaps(merged, topFirst[level], (byte)level, next);
            if (next.Count > maxEntries)
            {
                throw new InvalidOperationException($"the merged index would hold more than {maxEntries} entries");
            }

            (merged, next) = (next, merged);
            next.Clear();
        }

        return [.. merged];
    }

    /// <summary>One merge step: <paramref name="upper"/> (already merged) plus the parts of <paramref name="lower"/> in its gaps.</summary>
    private static void FillGaps(List<SegmentMapping> upper, ReadOnlySpan<SegmentMapping> lower, byte tag, List<SegmentMapping> output)
    {
        var u = 0;
        foreach (var entry in lower)
        {
            // Emit upper entries that start before this lower entry ends, filling gaps as we go.
            var position = entry.Offset;
            while (position < entry.End)
            {
                while (u < upper.Count && upper[u].End <= position)
                {
                    output.Add(upper[u]);
                    u++;
                }

                if (u < upper.Count && upper[u].Offset <= position)
                {
                    // Covered by an upper entry: skip past it.
                    position = upper[u].End;
                    continue;
                }

                var gapEnd = u < upper.Count ? upper[u].Offset : ulong.MaxValue;
                var pieceEnd = Math.Min(gapEnd, entry.End);
                output.Add(entry.Trim(position, pieceEnd).WithTag(tag));
                position = pieceEnd;
            }
        }

        for (; u < upper.Count; u++)
        {
            output.Add(upper[u]);
        }
    }
}
