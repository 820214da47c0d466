namespace TurboOci.Formats.Lsmt;

/// <summary>
/// The in-memory index of a writable layer: sorted, non-overlapping entries where a newer entry replaces
/// whatever older entries it overlaps ("last writer wins", splitting an older entry when the new one lies
/// inside it), as overlaybd's ordered map does. Not thread-safe: <see cref="WritableLayer"/> guards it.
/// </summary>
/// <remarks>
/// The entries live in sorted chunks of at most <see cref="ChunkCapacity"/>, not in one flat array: an
/// indexed layer holds hundreds of thousands of entries (one per file extent), and its metadata blocks land
/// between them at every flush; shifting a flat array for each of those inserts made indexing quadratic.
/// A chunk is found by binary search over the chunks' last entries, then the entry inside the chunk.
/// </remarks>
public sealed class WritableIndex
{
    private const int ChunkCapacity = 512;

    /// <summary>Never holds an empty chunk; chunk k's entries all end before chunk k+1's start.</summary>
    private readonly List<Chunk> _chunks = [];

    public int Count { get; private set; }

    /// <summary>Sectors of stored data the live entries reference.</summary>
    public ulong DataSectors
    {
        get
        {
            ulong total = 0;
            foreach (var chunk in _chunks)
            {
                total += SegmentIndex.CountDataSectors(chunk.Entries);
            }

            return total;
        }
    }

    /// <summary>
    /// Sorted entries that include every entry overlapping sectors [<paramref name="start"/>, <paramref name="end"/>)
    /// (possibly more after them): a view into a chunk when one holds them all, else a copy. Valid until the next <see cref="Insert"/>.
    /// </summary>
    public ReadOnlySpan<SegmentMapping> Overlapping(ulong start, ulong end)
    {
        var (c, i) = Locate(start);
        if (c == _chunks.Count)
        {
            return [];
        }

        var chunk = _chunks[c];
        if (chunk.Last.End >= end || c + 1 == _chunks.Count || _chunks[c + 1].First.Offset >= end)
        {
            return chunk.Entries[i..];
        }

        var gathered = new List<SegmentMapping>();
        for (; c < _chunks.Count; c++, i = 0)
        {
            foreach (var entry in _chunks[c].Entries[i..])
            {
                if (entry.Offset >= end)
                {
                    return gathered.ToArray();
                }

                gathered.Add(entry);
            }
        }

        return gathered.ToArray();
    }

    /// <summary>Inserts <paramref name="mapping"/>, trimming or removing the parts of older entries it covers.</summary>
    public void Insert(SegmentMapping mapping)
    {
        if (mapping.Length == 0)
        {
            return;
        }

        // Entries overlapping the new one: from the first that ends after its start, while they start before its end.
        var (c, i) = Locate(mapping.Offset);
        var overlapped = 0;
        SegmentMapping firstOverlapped = default, lastOverlapped = default;
        for (int chunkIndex = c, at = i; chunkIndex < _chunks.Count; chunkIndex++, at = 0)
        {
            var entries = _chunks[chunkIndex].Entries;
            for (; at < entries.Length && entries[at].Offset < mapping.End; at++)
            {
                if (overlapped++ == 0)
                {
                    firstOverlapped = entries[at];
                }

                lastOverlapped = entries[at];
            }

            if (at < entries.Length)
            {
                break;
            }
        }

        // Keep the parts of the overlapped entries sticking out at either end.
        Span<SegmentMapping> replacement = stackalloc SegmentMapping[3];
        var count = 0;
        if (overlapped > 0 && firstOverlapped.Offset < mapping.Offset)
        {
            replacement[count++] = firstOverlapped.Trim(firstOverlapped.Offset, mapping.Offset);
        }

        replacement[count++] = mapping;
        if (overlapped > 0 && lastOverlapped.End > mapping.End)
        {
            replacement[count++] = lastOverlapped.Trim(mapping.End, lastOverlapped.End);
        }

        RemoveAt(c, i, overlapped);
        InsertAt(c, i, replacement[..count]);
        Count += count - overlapped;
    }

    /// <summary>A copy of the entries, sorted, for a snapshot view or a commit.</summary>
    public SegmentMapping[] ToArray()
    {
        var all = new SegmentMapping[Count];
        var at = 0;
        foreach (var chunk in _chunks)
        {
            chunk.Entries.CopyTo(all.AsSpan(at));
            at += chunk.Count;
        }

        return all;
    }

    /// <summary>The position of the first entry ending after <paramref name="sector"/>: (chunk count, 0) when none does.</summary>
    private (int Chunk, int Index) Locate(ulong sector)
    {
        // First chunk whose last entry ends after the sector (ends are sorted, chunk after chunk).
        int low = 0, high = _chunks.Count;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (_chunks[middle].Last.End > sector)
            {
                high = middle;
            }
            else
            {
                low = middle + 1;
            }
        }

        return low == _chunks.Count ? (low, 0) : (low, SegmentIndex.FindFirst(_chunks[low].Entries, sector));
    }

    /// <summary>Removes <paramref name="count"/> entries from position (chunk, index) on, dropping chunks left empty.</summary>
    private void RemoveAt(int chunkIndex, int index, int count)
    {
        while (count > 0)
        {
            var chunk = _chunks[chunkIndex];
            var take = Math.Min(count, chunk.Count - index);
            Array.Copy(chunk.Items, index + take, chunk.Items, index, chunk.Count - index - take);
            chunk.Count -= take;
            count -= take;
            if (chunk.Count == 0)
            {
                _chunks.RemoveAt(chunkIndex);
            }
            else
            {
                chunkIndex++;
            }

            index = 0;
        }
    }

    /// <summary>Inserts sorted <paramref name="items"/> before the entry now at (chunk, index), splitting a full chunk.</summary>
    private void InsertAt(int chunkIndex, int index, ReadOnlySpan<SegmentMapping> items)
    {
        if (_chunks.Count == 0)
        {
            _chunks.Add(new Chunk());
        }

        if (chunkIndex == _chunks.Count)
        {
            // After every entry: the end of the last chunk.
            chunkIndex--;
            index = _chunks[chunkIndex].Count;
        }

        var chunk = _chunks[chunkIndex];
        if (chunk.Count + items.Length > ChunkCapacity)
        {
            var half = chunk.Count / 2;
            var right = new Chunk { Count = chunk.Count - half };
            Array.Copy(chunk.Items, half, right.Items, 0, right.Count);
            chunk.Count = half;
            _chunks.Insert(chunkIndex + 1, right);
            if (index > half)
            {
                chunk = right;
                index -= half;
            }
        }

        Array.Copy(chunk.Items, index, chunk.Items, index + items.Length, chunk.Count - index);
        items.CopyTo(chunk.Items.AsSpan(index));
        chunk.Count += items.Length;
    }

    private sealed class Chunk
    {
        public readonly SegmentMapping[] Items = new SegmentMapping[ChunkCapacity];
        public int Count;

        public ReadOnlySpan<SegmentMapping> Entries => Items.AsSpan(0, Count);

        public SegmentMapping First => Items[0];

        public SegmentMapping Last => Items[Count - 1];
    }
}
