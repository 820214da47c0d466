using System.Formats.Tar;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>
/// overlaybd's own TurboOCI fs-meta (a committed warp file in a ZFile) stacked on the stock base layer, with the
/// uncompressed tar of the original layer as its target: the exported disk is a clean ext4 holding every tar member.
/// </summary>
public sealed class TurboOciLayerTests
{
    [Fact]
    public void Overlaybd_fs_meta_over_the_base_layer_reads_the_tar_members_through_the_target()
    {
        using var temp = new TempDir();
        var baseLayer = ReferenceFixtures.ExtractBaseLayer(temp.File("ext4_64"));
        var tarPath = ReferenceFixtures.Gunzip(RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz"), temp.File("layer.tar"));

        using var target = FileBlockSource.OpenRead(tarPath);
        using var lower = LayerBlob.OpenFile(baseLayer);
        using var meta = LayerBlob.OpenFile(RepoPaths.Fixture("overlaybd-reference", "turbooci", "ext4.fs.meta"), warpTarget: target);
        Assert.True(meta.IsWarp);
        Assert.Equal(46, meta.Index.Count);
        Assert.Equal(46UL, meta.Trailer.IndexSize);

        // The documented remote entry for dir/lines.txt: tag 1, moffset = its data offset in the uncompressed tar.
        Assert.Contains(new SegmentMapping(37953536 / 512, 3700224 / 512, 2560 / 512, tag: 1), meta.Index.Entries.ToArray());

        var image = temp.File("disk.img");
        using (var stack = new LayerStack([lower, meta]))
        {
            Assert.Equal(64L << 30, stack.Size);
            using var output = FileBlockSource.OpenReadWrite(image, stack.Size);
            BlockExtents.CopyData(stack, output);
        }

        var fsck = E2fsck.Check(image);
        Assert.True(fsck.Clean, fsck.ToString());

        // Every regular file reads back with the tar member's bytes.
        using var tarStream = File.OpenRead(tarPath);
        using var reader = new TarReader(tarStream);
        var files = 0;
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is { } data)
            {
                using var expected = new MemoryStream();
                data.CopyTo(expected);
                Assert.Equal(expected.ToArray(), Debugfs.Cat(image, "/" + entry.Name));
                files++;
            }
        }

        Assert.Equal(6, files);
    }
}
