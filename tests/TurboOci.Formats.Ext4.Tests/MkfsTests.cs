using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

public class MkfsTests
{
    [Theory]
    [InlineData(4096, Ext4ChecksumMode.MetadataCsum, true)]
    [InlineData(4096, Ext4ChecksumMode.UninitBg, true)]
    [InlineData(1024, Ext4ChecksumMode.None, false)]
    [InlineData(1024, Ext4ChecksumMode.MetadataCsum, false)]
    public void OurMkfsPassesE2fsck(int blockSize, Ext4ChecksumMode checksums, bool sixtyFourBit)
    {
        using var image = new ScratchImage(96L << 20);
        image.Format(new Ext4CreateOptions { BlockSize = blockSize, Checksums = checksums, SixtyFourBit = sixtyFourBit });

        Ext4Tools.AssertClean(image.Path);
        var root = Debugfs.List(image.Path, "/");
        Assert.Contains(root, e => e.Name == "lost+found" && e.IsDirectory && e.Permissions == 0x1C0);
    }
}
