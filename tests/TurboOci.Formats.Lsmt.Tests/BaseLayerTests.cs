using System.Security.Cryptography;
using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>
/// overlaybd's stock base layer ext4_64 (a 2021 ZFile → LSMT, 64 GiB virtual): it opens, its exported raw disk is
/// a clean ext4 that e2fsck, debugfs and the kernel accept (formats doc Appendix A).
/// </summary>
public sealed class BaseLayerTests
{
    private static string ExtractBaseLayer(TempDir temp) => ReferenceFixtures.ExtractBaseLayer(temp.File("ext4_64"));

    [Fact]
    public void The_stock_base_layer_exports_to_an_ext4_disk_that_fsck_debugfs_and_the_kernel_accept()
    {
        using var temp = new TempDir();
        var blob = ExtractBaseLayer(temp);
        using (var stream = File.OpenRead(blob))
        {
            Assert.Equal("c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9", Convert.ToHexStringLower(SHA256.HashData(stream)));
        }

        var image = temp.File("disk.img");
        using (var layer = LayerBlob.Open(FileBlockSource.OpenRead(blob), out var shape, ownsBlob: true))
        {
            Assert.True(shape.ZFile);
            Assert.Equal(ZFileAlgorithm.Lz4, shape.Algorithm);
            Assert.Equal(64L << 30, layer.Size);
            Assert.Equal("C02FB491-B4D4-4904-8684-A014D032AF78", layer.Uuid);
            Assert.Equal(8323, layer.Index.Count);
            Assert.Equal(8448UL, layer.Trailer.IndexSize);
            Assert.Equal(8209, layer.Index.Entries.ToArray().Count(e => e.Zeroed));
            Assert.Equal(new SegmentMapping(0, 8272, 8), layer.Index.Entries[0]);
            Assert.Equal(new SegmentMapping(8272, 120, 8280, zeroed: true), layer.Index.Entries[1]);

            using var output = FileBlockSource.OpenReadWrite(image, layer.Size);
            BlockExtents.CopyData(layer, output);
        }

        var fsck = E2fsck.Check(image);
        Assert.True(fsck.Clean, fsck.ToString());

        Assert.Contains(Debugfs.List(image, "/"), e => e.Name == "lost+found" && e.IsDirectory);

        using var mount = Ext4Mount.Mount(image, readOnly: true);
        Assert.True(Directory.Exists(mount.PathOf("lost+found")));
        var stat = new DriveInfo(mount.MountPoint);
        Assert.True(stat.TotalSize > 60L << 30, $"mounted size {stat.TotalSize}");
    }
}
