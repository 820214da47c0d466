using System.IO.Compression;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Formats.Lsmt;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>
/// The real pipeline on overlaybd's own stock base layer (ext4_64, a ZFile-compressed LSMT): a TurboOCI warp
/// layer over it receives every metadata write of the engine and tag-1 mappings into the uncompressed tar for
/// file data (or, in copied mode, a plain writable layer receives the data too). The exported disk must pass
/// e2fsck and mount as exactly what GNU tar extracts from the same layer, and as overlaybd's own native layer
/// for that tar (overlaybd-apply's committed layer on the same base) mounts.
/// </summary>
public class OverlaybdBaseLayerTests
{
    private sealed class WarpMapper(WritableLayer warp) : IFileDataMapper
    {
        public void Map(long deviceOffset, long length, long tarOffset) => warp.AddRemoteMapping(deviceOffset, length, tarOffset);
    }

    [Theory]
    [InlineData(LayerDataMode.Mapped)]
    [InlineData(LayerDataMode.Copied)]
    public void IndexingTheReferenceLayerOnTheStockBaseMountsAsGnuTarAndOverlaybdSeeIt(LayerDataMode mode)
    {
        using var work = new TempDir();
        var basePath = work.File("ext4_64");
        ReferenceFixtures.ExtractBaseLayer(basePath);

        var layerTar = new MemoryStream();
        using (var gz = new GZipStream(File.OpenRead(RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz")), CompressionMode.Decompress))
        {
            gz.CopyTo(layerTar);
        }

        var tar = layerTar.ToArray();
        var exported = work.File("disk.img");
        using (var baseLayer = LayerBlob.OpenFile(basePath))
        {
            using (var fs = Ext4FileSystem.Open(baseLayer))
            {
                // Exactly the features Appendix A of the formats reference lists for the base layer.
                Assert.Equal(CompatFeatures.HasJournal | CompatFeatures.ExtAttr | CompatFeatures.ResizeInode | CompatFeatures.DirIndex,
                    fs.Superblock.CompatFeatures & (CompatFeatures)0xFFF);
                Assert.True(fs.Superblock.HasRoCompat(RoCompatFeatures.GdtCsum) && !fs.Superblock.HasMetadataChecksums);
                Assert.Equal(["lost+found"], fs.ListDirectory(Ext4Constants.RootInode).Select(e => e.Name));
            }

            using var upper = mode == LayerDataMode.Mapped
                ? WritableLayer.CreateWarp(work.File("fs.meta"), work.File("fs.index"), 0, new MemoryBlockSource(tar), lower: baseLayer)
                : WritableLayer.Create(work.File("data"), work.File("index"), 0, lower: baseLayer);
            using (var fs = Ext4FileSystem.Open(upper, writable: true))
            {
                new OciLayerApplier(fs, mode, mode == LayerDataMode.Mapped ? new WarpMapper(upper) : null).Apply(new MemoryStream(tar));
            }

            Assert.Equal(mode == LayerDataMode.Mapped, upper.GetEntries().Any(e => e.Tag == 1));
            Export(upper, [baseLayer, upper], exported);
        }

        // overlaybd's own native layer for the same tar, on the same base.
        var reference = work.File("overlaybd.img");
        using (var stack = LayerBlob.OpenStack([basePath, RepoPaths.Fixture("overlaybd-reference", "overlaybd-apply", "overlaybd.commit.lz4")]))
        {
            Export(stack, [stack], reference);
        }

        Ext4Tools.AssertClean(exported);
        using var extracted = new TempDir();
        File.WriteAllBytes(work.File("layer.tar"), tar);
        Tool.RunChecked("tar", "-xf", work.File("layer.tar"), "-C", extracted.Path, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*");
        var expected = FileTree.FromDirectory(extracted.Path);
        Assert.NotEmpty(expected.Entries);
        using (var mount = Ext4Mount.Mount(exported))
        {
            FileTree.AssertSame(expected, FileTree.FromDirectory(mount.MountPoint, "lost+found"));
        }

        using var overlaybd = Ext4Mount.Mount(reference);
        FileTree.AssertSame(FileTree.FromDirectory(overlaybd.MountPoint, "lost+found"), expected);
    }

    /// <summary>Flattens the merged view into a sparse raw file, copying only ranges some layer holds data for.</summary>
    private static void Export(BlockSource top, IEnumerable<BlockSource> layers, string path)
    {
        using var output = FileBlockSource.OpenReadWrite(path, top.Size);
        var ranges = layers.SelectMany(l => l.GetExtents(0, l.Size))
            .Where(e => e.Kind == ExtentKind.Data).OrderBy(e => e.Offset).ToList();
        var buffer = new byte[1 << 20];
        long done = 0;
        foreach (var range in ranges)
        {
            for (var at = Math.Max(range.Offset, done); at < range.End;)
            {
                var n = (int)Math.Min(buffer.Length, range.End - at);
                top.ReadExactlyAt(at, buffer.AsSpan(0, n));
                output.WriteAt(at, buffer.AsSpan(0, n));
                at += n;
            }

            done = Math.Max(done, range.End);
        }
    }
}
