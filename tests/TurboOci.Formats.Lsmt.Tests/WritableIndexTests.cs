namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>
/// The chunked writable index against the plain sorted list it replaced (kept here as the oracle): thousands of
/// random overlapping writes, so chunks fill, split and empty, must leave the same entries, and every range
/// query must hand back all the entries a read of that range touches.
/// </summary>
public sealed class WritableIndexTests
{
    [Theory]
    [InlineData(1, 4000, 20_000, 40)]
    [InlineData(2, 6000, 5_000, 300)]
    [InlineData(3, 3000, 400_000, 8)]
    public void Random_writes_leave_the_entries_a_flat_sorted_list_would(int seed, int writes, int sectors, int maxLength)
    {
        var random = new Random(seed);
        var index = new WritableIndex();
        var oracle = new List<SegmentMapping>();
        for (var i = 0; i < writes; i++)
        {
            var length = (uint)random.Next(1, maxLength + 1);
            var offset = (ulong)random.Next(0, sectors - (int)length);

            // Mostly appends at rising offsets (file data) with writes back into the middle (metadata), as an indexer does.
            if (i % 3 == 0)
            {
                offset = (ulong)(sectors / 2) + (ulong)(i * (long)maxLength % (sectors / 2 - maxLength));
            }

            var mapping = new SegmentMapping(offset, length, (ulong)random.Next(0, 1 << 30), zeroed: random.Next(8) == 0, tag: (byte)random.Next(2));
            index.Insert(mapping);
            OracleInsert(oracle, mapping);

            if (i % 500 == 0 || i == writes - 1)
            {
                Assert.Equal(oracle, index.ToArray());
                Assert.Equal(oracle.Count, index.Count);
                Assert.Equal(SegmentIndex.CountDataSectors(oracle.ToArray()), index.DataSectors);
                CheckRangeQueries(index, oracle, random, sectors);
            }
        }
    }

    [Fact]
    public void A_write_over_everything_collapses_many_chunks_into_one_entry()
    {
        var index = new WritableIndex();
        for (ulong i = 0; i < 5000; i++)
        {
            index.Insert(new SegmentMapping(i * 2, 1, i));
        }

        index.Insert(new SegmentMapping(1, 9997, 77));
        Assert.Equal(
            [new SegmentMapping(0, 1, 0), new SegmentMapping(1, 9997, 77), new SegmentMapping(9998, 1, 4999)],
            index.ToArray());
        Assert.Equal(3, index.Overlapping(0, 20_000).Length);
    }

    private static void CheckRangeQueries(WritableIndex index, List<SegmentMapping> oracle, Random random, int sectors)
    {
        for (var q = 0; q < 50; q++)
        {
            var start = (ulong)random.Next(0, sectors);
            var end = start + (ulong)random.Next(1, q % 5 == 0 ? sectors : 64);
            var expected = oracle.Where(e => e.Offset < end && e.End > start).ToArray();
            var view = index.Overlapping(start, end).ToArray();
            for (var i = 1; i < view.Length; i++)
            {
                Assert.True(view[i - 1].End <= view[i].Offset, "the view is sorted and non-overlapping");
            }

            // The view may hold entries after the range, never miss one inside it, and starts at the first one.
            Assert.Equal(expected, view.Where(e => e.Offset < end && e.End > start).ToArray());
            if (expected.Length > 0)
            {
                Assert.Equal(expected[0], view[0]);
            }
        }
    }

    /// <summary>The previous implementation: one flat sorted list, overlapped entries replaced by their trimmed ends.</summary>
    private static void OracleInsert(List<SegmentMapping> entries, SegmentMapping mapping)
    {
        var first = entries.FindIndex(e => e.End > mapping.Offset);
        if (first < 0)
        {
            first = entries.Count;
        }

        var last = first;
        while (last < entries.Count && entries[last].Offset < mapping.End)
        {
            last++;
        }

        var replacement = new List<SegmentMapping>();
        if (first < last && entries[first].Offset < mapping.Offset)
        {
            replacement.Add(entries[first].Trim(entries[first].Offset, mapping.Offset));
        }

        replacement.Add(mapping);
        if (first < last && entries[last - 1].End > mapping.End)
        {
            replacement.Add(entries[last - 1].Trim(mapping.End, entries[last - 1].End));
        }

        entries.RemoveRange(first, last - first);
        entries.InsertRange(first, replacement);
    }
}
