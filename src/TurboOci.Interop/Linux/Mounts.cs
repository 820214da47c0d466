using System.Globalization;
using System.Text;

namespace TurboOci.Interop.Linux;

/// <summary>mount(2) flags (linux/mount.h).</summary>
[Flags]
public enum MountFlags : uint
{
    None = 0,
    ReadOnly = 1,
    NoSetUid = 2,
    NoDevices = 4,
    NoExec = 8,
}

/// <summary>umount2(2) flags.</summary>
[Flags]
public enum UnmountFlags
{
    None = 0,
    Force = 1,

    /// <summary>MNT_DETACH: a lazy unmount, gone from the tree now, released when its last user leaves.</summary>
    Detach = 2,
}

/// <summary>One line of /proc/self/mountinfo (proc(5)).</summary>
public sealed record MountInfo(int MountId, int ParentId, int Major, int Minor, string Root, string MountPoint, string FileSystemType, string Source, string Options);

/// <summary>Mounting, unmounting and listing mounts, by the system calls themselves (no mount(8)).</summary>
public static class Mounts
{
    public static void Mount(string source, string target, string fileSystemType, MountFlags flags, string? data) =>
        ErrnoException.Check(Libc.Mount(source, target, fileSystemType, (nuint)flags, data), "mount", $"{fileSystemType} on {target}");

    public static void Unmount(string target, UnmountFlags flags = UnmountFlags.None) =>
        ErrnoException.Check(Libc.Umount2(target, (int)flags), "umount2", target);

    /// <summary>umount2 that reports the errno instead of throwing: 0 on success, else the errno.</summary>
    public static int TryUnmount(string target, UnmountFlags flags = UnmountFlags.None) =>
        Libc.Umount2(target, (int)flags) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();

    /// <summary>The mounts this process sees, in mount order.</summary>
    public static IReadOnlyList<MountInfo> Read() => Parse(File.ReadAllText("/proc/self/mountinfo"));

    /// <summary>The last (topmost) mount whose mount point is exactly <paramref name="path"/>.</summary>
    public static MountInfo? At(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        return Read().LastOrDefault(m => m.MountPoint == full);
    }

    /// <summary>Parses mountinfo text: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw".</summary>
    public static IReadOnlyList<MountInfo> Parse(string text)
    {
        var mounts = new List<MountInfo>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-", 6);
            if (fields.Length < 7 || separator < 0 || separator + 2 >= fields.Length)
            {
                throw new FormatException($"mountinfo line without the expected fields: {line}");
            }

            var device = fields[2].Split(':');
            mounts.Add(new MountInfo(
                int.Parse(fields[0], CultureInfo.InvariantCulture),
                int.Parse(fields[1], CultureInfo.InvariantCulture),
                int.Parse(device[0], CultureInfo.InvariantCulture),
                int.Parse(device[1], CultureInfo.InvariantCulture),
                Unescape(fields[3]),
                Unescape(fields[4]),
                Unescape(fields[separator + 1]),
                Unescape(fields[separator + 2]),
                fields[5]));
        }

        return mounts;
    }

    /// <summary>The kernel writes space, tab, newline and backslash in paths as \ooo octal escapes.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        var raw = Encoding.UTF8.GetBytes(field);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && i + 3 < raw.Length && IsOctal(raw[i + 1]) && IsOctal(raw[i + 2]) && IsOctal(raw[i + 3]))
            {
                bytes.Add((byte)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(byte b) => (uint)(b - '0') < 8;
}
