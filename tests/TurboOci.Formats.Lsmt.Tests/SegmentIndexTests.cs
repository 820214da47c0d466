namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>The index behaviours overlaybd's own LSMT tests check (formats doc §11.1), with their expected values.</summary>
public sealed class SegmentIndexTests
{
    private static SegmentMapping M(ulong offset, uint length, ulong moffset, byte tag = 0, bool zeroed = false) => new(offset, length, moffset, zeroed, tag);

    private static string Show(IEnumerable<SegmentMapping> entries) => string.Join(" ", entries.Select(e => $"{e.Offset},{e.Length},{e.MappedOffset},{e.Tag}{(e.Zeroed ? "z" : "")}"));

    private static string Lookup(SegmentIndex index, ulong offset, ulong length)
    {
        var output = new SegmentMapping[16];
        var n = index.Lookup(offset, offset + length, output);
        return Show(output.Take(n));
    }

    [Fact]
    public void Lookup_trims_the_first_and_last_entries()
    {
        var index = new SegmentIndex([M(0, 10, 0), M(10, 10, 50), M(100, 10, 20)]);
        Assert.Equal("5,5,5,0 10,5,50,0", Lookup(index, 5, 10));
        Assert.Equal("16,4,56,0", Lookup(index, 16, 10));
        Assert.Equal("", Lookup(index, 26, 10));
        Assert.Equal("6,4,6,0 10,10,50,0 100,6,20,0", Lookup(index, 6, 100));
    }

    [Fact]
    public void Writable_index_insertion_is_last_writer_wins()
    {
        var index = new WritableIndex();
        foreach (var m in new[] { M(0, 20, 0), M(10, 15, 50), M(30, 100, 20), M(5, 10, 3), M(40, 10, 123), M(200, 10, 2133), M(150, 100, 21) })
        {
            index.Insert(m);
        }

        Assert.Equal("0,5,0,0 5,10,3,0 15,10,55,0 30,10,20,0 40,10,123,0 50,80,40,0 150,100,21,0", Show(index.ToArray()));
        Assert.Equal(5UL + 10 + 10 + 10 + 10 + 80 + 100, index.DataSectors);
    }

    [Fact]
    public void Merging_a_writable_index_over_a_lower_tags_each_range_by_level()
    {
        SegmentMapping[] upper = [M(5, 5, 0), M(10, 10, 50), M(100, 10, 20)];
        SegmentMapping[] lower = [M(0, 1, 7), M(2, 4, 5), M(15, 10, 22), M(30, 15, 89), M(87, 50, 32), M(150, 10, 84)];
        var merged = SegmentIndex.MergeLayers([upper, lower]);

        // overlaybd tags the writable layer N (= number of lowers) and the lowers 0..; ours count from the top.
        Assert.Equal("0,1,7,1 2,3,5,1 5,5,0,0 10,10,50,0 20,5,27,1 30,15,89,1 87,13,32,1 100,10,20,0 110,27,55,1 150,10,84,1", Show(merged));
    }

    [Fact]
    public void Merging_three_layers_lets_each_fill_only_the_gaps_above_it()
    {
        SegmentMapping[] top = [M(10, 10, 100)];
        SegmentMapping[] middle = [M(0, 15, 200, zeroed: true)];
        SegmentMapping[] bottom = [M(0, 40, 300)];
        Assert.Equal("0,10,200,1z 10,10,100,0 20,20,320,2", Show(SegmentIndex.MergeLayers([top, middle, bottom])));
    }

    [Fact]
    public void Merge_over_the_entry_limit_fails()
    {
        Assert.Throws<InvalidOperationException>(() => SegmentIndex.MergeLayers([[M(0, 1, 8), M(4, 1, 9)], [M(1, 1, 8), M(6, 1, 9)]], maxEntries: 3));
    }

    [Fact]
    public void Compress_folds_only_entries_that_touch_in_both_spaces_with_equal_kind_and_tag()
    {
        Assert.Equal("5,15,0,0 100,10,20,0", Show(SegmentIndex.Compress([M(5, 5, 0), M(10, 10, 5), M(100, 10, 20)])));
        Assert.Equal("5,25,0,0 100,10,20,0", Show(SegmentIndex.Compress([M(5, 5, 0), M(10, 10, 5), M(20, 10, 15), M(100, 10, 20)])));
        Assert.Equal("5,5,0,0 10,10,5,1", Show(SegmentIndex.Compress([M(5, 5, 0), M(10, 10, 5, tag: 1)])));
        Assert.Equal("5,5,0,0 10,10,5,0z", Show(SegmentIndex.Compress([M(5, 5, 0), M(10, 10, 5, zeroed: true)])));

        // The sum must stay strictly below 16383 sectors.
        Assert.Equal(2, SegmentIndex.Compress([M(0, 16000, 8), M(16000, 383, 16008)]).Count);
        Assert.Single(SegmentIndex.Compress([M(0, 16000, 8), M(16000, 382, 16008)]));
    }

    [Fact]
    public void Entries_encode_exactly_as_the_documented_bytes()
    {
        var bytes = new byte[16];
        M(0, 8272, 8).Write(bytes);
        Assert.Equal(Convert.FromHexString("0000000000004081" + "0800000000000000"), bytes);
        M(8272, 120, 8280, zeroed: true).Write(bytes);
        Assert.Equal(Convert.FromHexString("502000000000E001" + "5820000000008000"), bytes);
        SegmentMapping.Padding.Write(bytes);
        Assert.Equal(Convert.FromHexString("FFFFFFFFFFFF0300" + "0000000000000000"), bytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => M(0, 16384, 8));
    }

    [Fact]
    public void Find_first_agrees_with_a_linear_scan_for_every_position_and_size()
    {
        var random = new Random(9);
        for (var count = 0; count < 40; count++)
        {
            var entries = new List<SegmentMapping>();
            ulong offset = 0;
            for (var i = 0; i < count; i++)
            {
                offset += (ulong)random.Next(0, 3);
                var length = (uint)random.Next(1, 4);
                entries.Add(M(offset, length, 8));
                offset += length;
            }

            var index = new SegmentIndex([.. entries]);
            for (ulong sector = 0; sector <= offset + 2; sector++)
            {
                var expected = entries.FindIndex(e => e.End > sector) is var i && i >= 0 ? i : entries.Count;
                Assert.Equal(expected, index.FindFirst(sector));
                Assert.Equal(expected, SegmentIndex.FindFirst(entries.ToArray(), sector));
            }
        }
    }
}
