using TurboOci.Interop.Linux;
using TurboOci.Testing;
using KernelMounts = TurboOci.Interop.Linux.Mounts;

namespace TurboOci.Frontends.Tests.Interop;

/// <summary>The mount table reader and the mount(2)/umount2(2) wrappers, against the kernel.</summary>
public sealed class MountsTests
{
    [Fact]
    public void ParsesMountinfoWithOptionalFieldsAndOctalEscapes()
    {
        var mounts = KernelMounts.Parse(
            "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n" +
            "40 36 0:52 / /tmp/fuse rw,nosuid,nodev - fuse.turbooci turbooci rw,user_id=0\n");
        Assert.Equal(2, mounts.Count);
        Assert.Equal(new MountInfo(36, 35, 98, 0, "/mnt1", "/mnt with space", "ext3", "/dev/root", "rw,noatime"), mounts[0]);
        Assert.Equal(("fuse.turbooci", 52), (mounts[1].FileSystemType, mounts[1].Minor));
    }

    [Fact]
    public void MountsAndUnmountsATmpfsWhoseNameNeedsEscaping()
    {
        using var temp = new TempDir();
        var target = Directory.CreateDirectory(temp.File("a dir\twith tab")).FullName;
        KernelMounts.Mount("turbooci-test", target, "tmpfs", MountFlags.NoDevices, "size=1m");
        try
        {
            var mount = KernelMounts.At(target);
            Assert.NotNull(mount);
            Assert.Equal("tmpfs", mount.FileSystemType);
            Assert.Equal("turbooci-test", mount.Source);
        }
        finally
        {
            KernelMounts.Unmount(target);
        }

        Assert.Null(KernelMounts.At(target));
        var error = Assert.Throws<ErrnoException>(() => KernelMounts.Unmount(target));
        Assert.Equal(Errno.EINVAL, error.Errno); // not a mount point
        Assert.Contains("umount2", error.Message, StringComparison.Ordinal);
    }
}
