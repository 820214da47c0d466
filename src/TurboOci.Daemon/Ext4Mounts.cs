using TurboOci.Interop.Linux;

namespace TurboOci.Daemon;

/// <summary>The ext4 inside a served device, mounted and unmounted by the system calls (no mount(8)).</summary>
internal static class Ext4Mounts
{
    private const int BusyRetries = 20;
    private const int BusyRetryMilliseconds = 100;

    /// <summary>
    /// Mounts read-write, or read-only with <c>noload</c>: a read-only device cannot take a journal replay,
    /// and a read-only mount must not write one.
    /// </summary>
    public static void Mount(string device, string mountPoint, bool readOnly)
    {
        if (!Directory.Exists(mountPoint))
        {
            throw new DirectoryNotFoundException($"mount point {mountPoint} does not exist");
        }

        Mounts.Mount(device, mountPoint, "ext4", readOnly ? MountFlags.ReadOnly : MountFlags.None, readOnly ? "noload" : null);
    }

    /// <summary>
    /// Unmounts <paramref name="mountPoint"/> if <paramref name="device"/> is still mounted there. A busy mount is
    /// retried for two seconds, then unmounted lazily when <paramref name="lazy"/>, else refused.
    /// </summary>
    public static void Unmount(string mountPoint, string device, bool lazy)
    {
        if (Mounts.Read().LastOrDefault(m => m.MountPoint == mountPoint && m.Source == device) is null)
        {
            return; // unmounted by hand already
        }

        for (var attempt = 0; ; attempt++)
        {
            var errno = Mounts.TryUnmount(mountPoint);
            if (errno == 0 || errno == (int)Errno.EINVAL)
            {
                return;
            }

            if (errno != (int)Errno.EBUSY)
            {
                throw new ErrnoException("umount2", mountPoint, errno);
            }

            if (attempt >= BusyRetries)
            {
                if (!lazy)
                {
                    throw new IOException($"{mountPoint} is busy (a process uses files or has its working directory in it): the device stays attached");
                }

                Mounts.Unmount(mountPoint, UnmountFlags.Detach);
                return;
            }

            Thread.Sleep(BusyRetryMilliseconds);
        }
    }
}
