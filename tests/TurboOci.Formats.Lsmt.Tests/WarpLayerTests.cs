using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>Warp layers: metadata in the fs-meta file (tag 0), data in the target tar (tag 1).</summary>
public sealed class WarpLayerTests
{
    private const int Size = 64 << 20;

    [Fact]
    public void A_26_MiB_remote_mapping_becomes_four_entries_of_at_most_16383_sectors()
    {
        using var temp = new TempDir();
        using var target = new ZeroBlockSource(Size);
        using var warp = WritableLayer.CreateWarp(temp.File("meta"), temp.File("index"), Size, target);
        warp.AddRemoteMapping(0, 26 << 20, 0);
        Assert.Equal(
            [new SegmentMapping(0, 16383, 0, tag: 1), new(16383, 16383, 16383, tag: 1), new(32766, 16383, 32766, tag: 1), new(49149, 4099, 49149, tag: 1)],
            warp.GetEntries());
    }

    [Fact]
    public void Metadata_writes_and_remote_mappings_read_back_through_rw_reopen_commit_and_stack()
    {
        using var temp = new TempDir();
        var tar = new byte[16 << 20];
        new Random(7).NextBytes(tar);
        using var target = new MemoryBlockSource(tar);
        var shadow = new byte[Size];
        var random = new Random(11);
        using (var warp = WritableLayer.CreateWarp(temp.File("meta"), temp.File("index"), Size, target))
        {
            // The superblock-like first write makes sure the file holds tag-0 entries (overlaybd needs one to normalise tags).
            for (var i = 0; i < 200; i++)
            {
                var offset = random.Next(Size / 512 - 256) * 512L;
                var length = random.Next(1, 256) * 512;
                if (i == 0 || random.Next(4) == 0)
                {
                    var data = new byte[length];
                    random.NextBytes(data);
                    warp.WriteAt(offset, data);
                    data.CopyTo(shadow, offset);
                }
                else
                {
                    var remote = random.Next((tar.Length - length) / 512) * 512L;
                    warp.AddRemoteMapping(offset, length, remote);
                    tar.AsSpan((int)remote, length).CopyTo(shadow.AsSpan((int)offset));
                }
            }

            Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(warp));
        }

        using var reopened = WritableLayer.OpenWarp(temp.File("meta"), temp.File("index"), target);
        Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(reopened));

        var blob = temp.File("ext4.fs.meta");
        LayerBlobWriter.Write(blob, new BlobPackaging { Compression = ZFileAlgorithm.Lz4 }, stream => reopened.Commit(stream, new CommitOptions { Uuid = "33333333-3333-3333-3333-333333333333" }));
        using var committed = LayerBlob.OpenFile(blob, warpTarget: target);
        Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(committed));
        Assert.Equal("33333333-3333-3333-3333-333333333333", committed.Uuid);
        Assert.Contains(committed.Index.Entries.ToArray(), e => e.Tag == 1);
        Assert.NotEqual(0UL, committed.Trailer.IndexSize);

        // Warp commits keep the exact entry count (no padding to 256).
        Assert.Equal((ulong)committed.Index.Count, committed.Trailer.IndexSize);

        // Opened without its target, the tar offsets point past the index: overlaybd's mapped-range check refuses it.
        var refused = Assert.Throws<TurboOciFormatException>(() => LayerBlob.OpenFile(blob));
        Assert.Equal("index.moffset", refused.Field);

        // In a stack over an ordinary layer the warp layer resolves its own two files; the lower shows through its gaps.
        using var lowerTemp = new TempDir();
        var lowerBytes = new byte[Size];
        new Random(3).NextBytes(lowerBytes.AsSpan(0, 1 << 20));
        using (var lowerRw = WritableLayer.Create(lowerTemp.File("d"), lowerTemp.File("i"), Size))
        {
            lowerRw.WriteAt(0, lowerBytes.AsSpan(0, 1 << 20));
            using var lowerOut = File.Create(lowerTemp.File("lower.commit"));
            lowerRw.Commit(lowerOut);
        }

        using var lower = LayerBlob.OpenFile(lowerTemp.File("lower.commit"));
        using var stack = new LayerStack([lower, committed]);
        var expected = (byte[])lowerBytes.Clone();
        foreach (var extent in committed.GetExtents(0, Size).Where(e => e.Kind == ExtentKind.Data))
        {
            shadow.AsSpan((int)extent.Offset, (int)extent.Length).CopyTo(expected.AsSpan((int)extent.Offset));
        }

        Assert.Equal(LsmtFixtures.Sha256(expected), LsmtFixtures.Sha256(stack));

        // Merging materialises the remote data into an ordinary layer.
        using var merged = new MemoryStream();
        LayerWriter.WriteMerged(merged, stack);
        using var mergedLayer = CommittedLayer.Open(new MemoryBlockSource(merged.ToArray()));
        Assert.Equal(LsmtFixtures.Sha256(expected), LsmtFixtures.Sha256(mergedLayer));
    }
}
