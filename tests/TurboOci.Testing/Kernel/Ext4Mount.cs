namespace TurboOci.Testing;

/// <summary>
/// An ext4 image mounted by the kernel through a loop device on a fresh temporary mount point. Dispose
/// unmounts (retrying while busy, lazily as a last resort), detaches the loop device and removes the
/// mount point, also when the test body threw.
/// </summary>
public sealed class Ext4Mount : IDisposable
{
    private readonly LoopDevice _loop;
    private readonly TempDir _mountPointDir;
    private bool _disposed;

    private Ext4Mount(LoopDevice loop, TempDir mountPointDir)
    {
        _loop = loop;
        _mountPointDir = mountPointDir;
    }

    /// <summary>Where the file system is mounted.</summary>
    public string MountPoint => _mountPointDir.Path;

    /// <summary>The loop device the image is attached to.</summary>
    public string Device => _loop.Device;

    /// <summary>
    /// Mounts <paramref name="imagePath"/>. Read-only mounts add <c>noload</c> so an image with a dirty
    /// journal still mounts without the kernel trying to replay (write) it. <paramref name="options"/> are
    /// appended to the mount options.
    /// </summary>
    public static Ext4Mount Mount(string imagePath, bool readOnly = true, string? options = null)
    {
        var loop = LoopDevice.Attach(imagePath, readOnly);
        TempDir? mountPointDir = null;
        try
        {
            mountPointDir = new TempDir("turbooci-mnt-");
            var allOptions = readOnly ? "ro,noload" : "rw";
            if (!string.IsNullOrEmpty(options))
            {
                allOptions += "," + options;
            }

            Tool.RunChecked("mount", "-t", "ext4", "-o", allOptions, loop.Device, mountPointDir.Path);
            var mount = new Ext4Mount(loop, mountPointDir);
            LeakGuard.Register(mount);
            return mount;
        }
        catch
        {
            mountPointDir?.Dispose();
            loop.Dispose();
            throw;
        }
    }

    /// <summary>The absolute path of <paramref name="relativePath"/> inside the mounted file system.</summary>
    public string PathOf(string relativePath) => Path.Combine(MountPoint, relativePath.TrimStart('/'));

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Unmount();
        _loop.Dispose();
        _mountPointDir.Dispose();
        _disposed = true;
        LeakGuard.Unregister(this);
    }

    public override string ToString() => $"ext4 {_loop.ImagePath} on {MountPoint} ({Device})";

    private void Unmount()
    {
        for (var attempt = 0; attempt < 30 && Mounts.IsMountPoint(MountPoint); attempt++)
        {
            if (Tool.Run("umount", MountPoint).ExitCode == 0)
            {
                return;
            }

            // Busy: a test's open handle being finalized, or udev/blkid probing the device.
            Thread.Sleep(100);
        }

        if (Mounts.IsMountPoint(MountPoint))
        {
            Tool.RunChecked("umount", "--lazy", MountPoint);
        }
    }
}
