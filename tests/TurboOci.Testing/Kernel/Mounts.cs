namespace TurboOci.Testing;

/// <summary>Reads the kernel's mount table, to check that tests leave no mount behind.</summary>
public static class Mounts
{
    /// <summary>Mount points currently at or below <paramref name="folder"/>.</summary>
    public static IReadOnlyList<string> Under(string folder)
    {
        var prefix = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(folder));
        return All().Where(mountPoint => mountPoint == prefix || mountPoint.StartsWith(prefix + "/", StringComparison.Ordinal)).ToList();
    }

    /// <summary>Whether something is mounted exactly at <paramref name="mountPoint"/>.</summary>
    public static bool IsMountPoint(string mountPoint)
    {
        var full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(mountPoint));
        return All().Contains(full);
    }

    /// <summary>Every mount point in /proc/self/mounts, with the kernel's octal escapes decoded.</summary>
    public static IReadOnlyList<string> All() =>
        File.ReadAllLines("/proc/self/mounts")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length >= 2)
            .Select(fields => DecodeOctalEscapes(fields[1]))
            .ToList();

    // /proc/mounts writes space, tab, newline and backslash in a path as \040, \011, \012 and \134.
    private static string DecodeOctalEscapes(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        var raw = System.Text.Encoding.UTF8.GetBytes(field);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == (byte)'\\' && i + 3 < raw.Length && IsOctal(raw[i + 1]) && IsOctal(raw[i + 2]) && IsOctal(raw[i + 3]))
            {
                bytes.Add((byte)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(byte b) => (uint)(b - '0') < 8;
}
