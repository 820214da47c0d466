using System.Globalization;
using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;

namespace TurboOci.Interop.Fuse;

/// <summary>
/// Opening /dev/fuse and mounting a FUSE filesystem on it with the mount(2) system call, the way
/// fusermount3 does it for libfuse, but in-process: we are root, so no setuid helper is needed.
/// </summary>
public static class FuseKernel
{
    public const string DevicePath = "/dev/fuse";

    /// <summary>
    /// Opens a new FUSE connection. Non-blocking: workers poll(2) when no request is waiting, so
    /// they can notice a stop request without the connection being torn down first.
    /// </summary>
    public static SafeFileHandle OpenDevice() => Posix.Open(DevicePath, OpenFlags.ReadWrite | OpenFlags.NonBlocking);

    /// <summary>
    /// Mounts the connection on <paramref name="mountPoint"/> as file system type "fuse.<paramref name="subtype"/>",
    /// with a directory as root (rootmode=40000), owned by this process's user and group.
    /// </summary>
    public static void Mount(SafeFileHandle device, string mountPoint, string source, string subtype, bool readOnly, bool allowOther)
    {
        var (uid, gid) = Posix.Identity;
        var options = string.Create(CultureInfo.InvariantCulture,
            $"fd={device.DangerousGetHandle()},rootmode=40000,user_id={uid},group_id={gid},default_permissions{(allowOther ? ",allow_other" : string.Empty)}");
        var flags = MountFlags.NoSetUid | MountFlags.NoDevices | (readOnly ? MountFlags.ReadOnly : MountFlags.None);
        Mounts.Mount(source, mountPoint, "fuse." + subtype, flags, options);
    }
}
