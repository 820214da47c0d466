namespace TurboOci.Storage.Tests;

/// <summary>Extent helpers and the zero source (added for layer export).</summary>
public sealed class BlockExtentsTests
{
    [Fact]
    public void Coalesce_joins_touching_extents_of_one_kind_and_drops_empty_ones()
    {
        BlockExtent[] input =
        [
            new(0, 10, ExtentKind.Data), new(10, 5, ExtentKind.Data), new(15, 0, ExtentKind.Zero),
            new(15, 5, ExtentKind.Zero), new(20, 5, ExtentKind.Zero), new(30, 5, ExtentKind.Data),
        ];
        Assert.Equal(
            [new BlockExtent(0, 15, ExtentKind.Data), new(15, 10, ExtentKind.Zero), new(30, 5, ExtentKind.Data)],
            BlockExtents.Coalesce(input));
    }

    [Fact]
    public void Zero_source_reads_zeros_and_reports_one_zero_extent()
    {
        using var zeros = new ZeroBlockSource(10_000);
        var buffer = Enumerable.Repeat((byte)0xAA, 4096).ToArray();
        Assert.Equal(1808, zeros.ReadAt(8192, buffer));
        Assert.All(buffer.Take(1808), b => Assert.Equal(0, b));
        Assert.Equal(0xAA, buffer[1808]);
        Assert.Equal(0, zeros.ReadAt(10_000, buffer));
        Assert.Equal([new BlockExtent(100, 9900, ExtentKind.Zero)], zeros.GetExtents(100, 1 << 20));
    }

    [Fact]
    public void Copy_data_writes_only_non_zero_granules_of_data_extents()
    {
        var bytes = new byte[64 * 1024];
        bytes[5000] = 1; // granule 4096..8191
        bytes[40000] = 2; // granule 36864..40959
        using var source = new MemoryBlockSource(bytes);
        var target = new byte[bytes.Length];
        using var recorder = new RecordingSource(target);
        var written = BlockExtents.CopyData(source, recorder, chunkSize: 16384);
        Assert.Equal(2 * 4096, written);
        Assert.Equal(bytes, target);
        Assert.Equal([(4096L, 4096), (36864L, 4096)], recorder.Writes);
    }

    private sealed class RecordingSource(byte[] buffer) : BlockSource
    {
        public List<(long Offset, int Length)> Writes { get; } = [];

        public override long Size => buffer.Length;

        public override bool CanWrite => true;

        public override int ReadAt(long offset, Span<byte> destination) => throw new NotSupportedException();

        public override void WriteAt(long offset, ReadOnlySpan<byte> source)
        {
            Writes.Add((offset, source.Length));
            source.CopyTo(buffer.AsSpan((int)offset));
        }
    }
}
