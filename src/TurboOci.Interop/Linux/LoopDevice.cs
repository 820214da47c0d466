using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>
/// A loop device bound to a file, set up with the loop driver's ioctls (linux/loop.h), as
/// losetup(8) does: LOOP_CTL_GET_FREE on /dev/loop-control, then LOOP_CONFIGURE on the device.
/// </summary>
public sealed class LoopDevice
{
    public const uint LoopSetFd = 0x4C00;
    public const uint LoopClearFd = 0x4C01;
    public const uint LoopConfigure = 0x4C0A;
    public const uint LoopControlGetFree = 0x4C82;

    public const uint FlagReadOnly = 1;
    public const uint FlagAutoClear = 4;
    public const uint FlagDirectIo = 16;

    private LoopDevice(int number) => Number = number;

    public int Number { get; }

    /// <summary>/dev/loopN.</summary>
    public string Path => $"/dev/loop{Number}";

    /// <summary>
    /// Binds <paramref name="backingFile"/> to a free loop device. With <paramref name="autoClear"/>
    /// the kernel unbinds it by itself when its last user (a mounted filesystem, an open) goes away.
    /// </summary>
    public static unsafe LoopDevice Attach(string backingFile, bool readOnly, bool directIo = false, bool autoClear = false)
    {
        using var backing = Posix.Open(backingFile, readOnly ? OpenFlags.ReadOnly : OpenFlags.ReadWrite);
        using var control = Posix.Open("/dev/loop-control", OpenFlags.ReadWrite);
        for (var attempt = 0; ; attempt++)
        {
            // Another process may take the same free number between GET_FREE and CONFIGURE: then
            // CONFIGURE says EBUSY and we ask again.
            var number = ErrnoException.Check(Libc.Ioctl(control, LoopControlGetFree, 0), "ioctl LOOP_CTL_GET_FREE");
            using var device = Posix.Open($"/dev/loop{number}", readOnly ? OpenFlags.ReadOnly : OpenFlags.ReadWrite);
            var config = new LoopConfig
            {
                Fd = (uint)backing.DangerousGetHandle(),
                BlockSize = 0,
            };
            config.Info.Flags = (readOnly ? FlagReadOnly : 0) | (directIo ? FlagDirectIo : 0) | (autoClear ? FlagAutoClear : 0);
            var name = Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(backingFile));
            name.AsSpan(0, Math.Min(name.Length, LoopInfo64.NameLength - 1)).CopyTo(new Span<byte>(config.Info.FileName, LoopInfo64.NameLength));
            if (Libc.Ioctl(device, LoopConfigure, &config) == 0)
            {
                return new LoopDevice(number);
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != (int)Errno.EBUSY || attempt >= 20)
            {
                throw new ErrnoException("ioctl LOOP_CONFIGURE", $"/dev/loop{number} <- {backingFile}", errno);
            }
        }
    }

    /// <summary>
    /// Unbinds the device (LOOP_CLR_FD). If a filesystem still holds it, the kernel marks it
    /// auto-clear instead and unbinds it once that filesystem is gone.
    /// </summary>
    public void Detach() => Detach(Path);

    /// <summary>Unbinds /dev/loopN by path; see <see cref="Detach()"/>.</summary>
    public static void Detach(string devicePath)
    {
        using var device = Posix.Open(devicePath, OpenFlags.ReadOnly);
        var result = Libc.Ioctl(device, LoopClearFd, 0);
        var errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
        if (errno != 0 && errno != (int)Errno.ENXIO) // ENXIO: nothing was bound
        {
            throw new ErrnoException("ioctl LOOP_CLR_FD", devicePath, errno);
        }
    }

    /// <summary>The file bound to /dev/loopN, as sysfs reports it, or null when the device is free.</summary>
    public static string? BackingFile(int number)
    {
        var path = $"/sys/block/loop{number}/loop/backing_file";
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }

    /// <summary>Every bound loop device whose backing file lies at or under <paramref name="path"/>.</summary>
    public static IReadOnlyList<LoopDevice> FindByBackingFile(string path)
    {
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(path));
        var found = new List<LoopDevice>();
        foreach (var dir in Directory.EnumerateDirectories("/sys/block", "loop*"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir).AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                continue;
            }

            // A deleted or unreachable backing file is shown with a " (deleted)" suffix.
            var backing = BackingFile(number)?.Replace(" (deleted)", string.Empty, StringComparison.Ordinal);
            if (backing is not null && (backing == full || backing.StartsWith(full + "/", StringComparison.Ordinal)))
            {
                found.Add(new LoopDevice(number));
            }
        }

        return found;
    }

    /// <summary>Opens the device node, for callers that want to hold it.</summary>
    public SafeFileHandle Open(bool writable) => Posix.Open(Path, writable ? OpenFlags.ReadWrite : OpenFlags.ReadOnly);

    public override string ToString() => Path;
}

/// <summary>struct loop_info64 (linux/loop.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LoopInfo64
{
    public const int NameLength = 64;
    public const int KeyLength = 32;

    public ulong Device;
    public ulong Inode;
    public ulong RDevice;
    public ulong Offset;
    public ulong SizeLimit;
    public uint Number;
    public uint EncryptType;
    public uint EncryptKeySize;
    public uint Flags;
    public fixed byte FileName[NameLength];
    public fixed byte CryptName[NameLength];
    public fixed byte EncryptKey[KeyLength];
    public fixed ulong Init[2];
}

/// <summary>struct loop_config (linux/loop.h), the argument of LOOP_CONFIGURE.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LoopConfig
{
    public uint Fd;
    public uint BlockSize;
    public LoopInfo64 Info;
    public fixed ulong Reserved[8];
}
