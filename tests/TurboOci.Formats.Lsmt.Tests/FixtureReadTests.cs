using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>Every layer and stack in the reference fixtures reads back to the virtual disk overlaybd documented.</summary>
public sealed class FixtureReadTests
{
    [Theory]
    [InlineData("l1.commit", LsmtFixtures.Layer1Sha256)]
    [InlineData("l1.commit.lz4", LsmtFixtures.Layer1Sha256)]
    [InlineData("l1.commit.zstd", LsmtFixtures.Layer1Sha256)]
    [InlineData("l1.commit.lz4.tar", LsmtFixtures.Layer1Sha256)]
    [InlineData("l2.commit", LsmtFixtures.Layer2Sha256)]
    [InlineData("merged.l1l2.lz4", LsmtFixtures.Layers12Sha256)]
    public void Committed_layer_reads_the_documented_disk(string name, string sha256)
    {
        using var layer = LayerBlob.OpenFile(LsmtFixtures.Path(name));
        Assert.Equal(LsmtFixtures.VirtualSize, layer.Size);
        Assert.Equal(sha256, LsmtFixtures.Sha256(layer));
    }

    [Theory]
    [InlineData("l1.commit", "l2.commit")]
    [InlineData("l1.commit.lz4", "l2.commit.lz4")]
    public void Two_layer_stack_reads_the_documented_disk(string lower, string upper)
    {
        using var stack = LayerBlob.OpenStack([LsmtFixtures.Path(lower), LsmtFixtures.Path(upper)]);
        Assert.Equal(LsmtFixtures.VirtualSize, stack.Size);
        Assert.Equal(LsmtFixtures.Layers12Sha256, LsmtFixtures.Sha256(stack));
    }

    [Fact]
    public void Writable_pair_reads_the_documented_disk()
    {
        using var temp = new TempDir();
        using var layer = WritableLayer.Open(LsmtFixtures.CopyToTemp(temp, "l1.rw.data"), LsmtFixtures.CopyToTemp(temp, "l1.rw.index"));
        Assert.Equal("6B4FFB86-3454-4E02-BAA5-DF1ED419DA88", layer.Uuid);
        Assert.Equal(LsmtFixtures.Layer1Sha256, LsmtFixtures.Sha256(layer));
    }

    [Fact]
    public void Writable_upper_on_committed_lower_reads_the_documented_disk()
    {
        using var temp = new TempDir();
        using var lower = LayerBlob.OpenFile(LsmtFixtures.Path("l1.commit"));
        using var upper = WritableLayer.Open(LsmtFixtures.CopyToTemp(temp, "l2.rw.data"), LsmtFixtures.CopyToTemp(temp, "l2.rw.index"), lower);
        Assert.Equal(LsmtFixtures.Layers12Sha256, LsmtFixtures.Sha256(upper));
    }

    [Fact]
    public void Committed_header_trailer_and_index_decode_as_documented()
    {
        using var layer = LayerBlob.OpenFile(LsmtFixtures.Path("l1.commit"));
        Assert.Equal(LsmtFlags.Header | LsmtFlags.DataFile | LsmtFlags.Sealed, layer.Header.Flags);
        Assert.Equal(LsmtFlags.DataFile | LsmtFlags.Sealed, layer.Trailer.Flags);
        Assert.Equal(335360UL, layer.Trailer.IndexOffset);
        Assert.Equal(256UL, layer.Trailer.IndexSize);
        Assert.Equal("11111111-1111-1111-1111-111111111111", layer.Uuid);
        Assert.Equal(LsmtUuid.Null, layer.ParentUuid);
        var expected = new[]
        {
            (0L, 65536L, 4096L, false), (1048576, 1024, 69632, false), (1049600, 2048, 70656, true),
            (1051648, 1024, 70656, false), (2097664, 1536, 71680, false), (536870912, 262144, 73216, false),
        };
        Assert.Equal(expected, layer.Index.Entries.ToArray().Select(e => ((long)e.Offset * 512, (long)e.Length * 512, (long)e.MappedOffset * 512, e.Zeroed)));
    }

    [Fact]
    public void Layer_blob_shapes_are_recognised()
    {
        using (LayerBlob.Open(FileBlockSource.OpenRead(LsmtFixtures.Path("l1.commit.lz4.tar")), out var shape, ownsBlob: true))
        {
            Assert.True(shape.Tar);
            Assert.Equal(1536, shape.TarPayloadOffset);
            Assert.True(shape.ZFile);
            Assert.Equal(ZFileAlgorithm.Lz4, shape.Algorithm);
        }

        using (LayerBlob.Open(FileBlockSource.OpenRead(LsmtFixtures.Path("l1.commit")), out var bare, ownsBlob: true))
        {
            Assert.False(bare.Tar);
            Assert.False(bare.ZFile);
        }
    }

    [Fact]
    public void Extents_list_data_and_zeroed_ranges_of_a_stack()
    {
        using var stack = LayerBlob.OpenStack([LsmtFixtures.Path("l1.commit"), LsmtFixtures.Path("l2.commit")]);
        var data = BlockExtents.Coalesce(stack.GetExtents(0, stack.Size)).Where(e => e.Kind == ExtentKind.Data).ToList();
        // Layer 1 data plus layer 2 data, minus layer 2's trim at 536875008 + 8192.
        Assert.Equal(
            [(0L, 65536L), (1048576, 1024), (1051648, 1024), (2097664, 1536), (3145728, 4096), (536870912, 4096), (536883200, 262144 - 12288)],
            data.Select(e => (e.Offset, e.Length)));
    }
}
