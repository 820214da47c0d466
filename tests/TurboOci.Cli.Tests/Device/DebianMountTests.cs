using Layout = TurboOci.Registry.OciLayout;
using TurboOci.Testing;
using TurboOci.Testing.Tar;
using KernelMounts = TurboOci.Interop.Linux.Mounts;

namespace TurboOci.Cli.Tests.Device;

/// <summary>
/// A real distribution through the whole node path: the 4-layer Debian minbase image of tools/corpus (whiteouts,
/// opaque directories, type changes, hardlinks, xattrs) indexed by <c>turbooci index</c>, mounted by
/// <c>turbooci mount --frontend fuse</c> (daemon, FUSE file, loop device, kernel ext4), must show exactly the
/// tree umoci unpacks for the image.
/// </summary>
public sealed class DebianMountTests
{
    [Fact]
    public void TheDebianImageMountedThroughTheFuseFrontendShowsWhatUmociUnpacks()
    {
        var corpus = Corpus.DebianMinbase();
        var layout = new Layout(corpus.OciLayout);
        var manifest = layout.ReadManifest(layout.Resolve(corpus.Tag)).AsManifest();
        var blobs = manifest.Layers.Select(l => layout.BlobPath(l.ParsedDigest)).ToList();
        Assert.Equal(4, blobs.Count);

        using var session = new DaemonSession();
        var config = DeviceStacks.Index(session, "debian", blobs);
        var mnt = session.Directory("mnt");
        var device = session.RunChecked("mount", "--config", config, mnt, "--frontend", "fuse", "--name", "debian");
        Assert.Equal(("ext4", device), (KernelMounts.At(mnt)?.FileSystemType, KernelMounts.At(mnt)?.Source));

        FileTree.AssertSame(FileTree.FromDirectory(corpus.ExpectedRootfs), FileTree.FromDirectory(mnt, "lost+found"));

        session.RunChecked("umount", mnt);
        var (mounts, loops) = session.Leftovers();
        Assert.Empty(mounts);
        Assert.Empty(loops);
    }
}
