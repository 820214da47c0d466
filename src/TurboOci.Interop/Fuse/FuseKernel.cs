using System.Globalization;
using System.Runtime.InteropServices;
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

    /// <summary>
    /// Writes one reply, <paramref name="header"/> followed by <paramref name="payload"/>, with a single
    /// writev(2): the kernel copies the payload from wherever it is (a mapped file's page cache) straight
    /// into the request's pages, without a staging buffer. Returns the bytes written, or -errno
    /// (EFAULT: the payload's memory could not be read).
    /// </summary>
    public static unsafe int WriteReply(SafeFileHandle device, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        fixed (byte* headerBytes = header)
        fixed (byte* payloadBytes = payload)
        {
            var vectors = stackalloc Libc.IoVector[2];
            vectors[0] = new Libc.IoVector { Base = headerBytes, Length = (nuint)header.Length };
            vectors[1] = new Libc.IoVector { Base = payloadBytes, Length = (nuint)payload.Length };
            var result = Libc.Writev(device, vectors, payload.IsEmpty ? 1 : 2);
            return result >= 0 ? (int)result : -Marshal.GetLastPInvokeError();
        }
    }
}
