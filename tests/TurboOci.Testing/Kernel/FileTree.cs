using System.Security.Cryptography;
using System.Text;

namespace TurboOci.Testing;

/// <summary>The kind of a file in a <see cref="FileTree"/>.</summary>
public enum FileTreeKind
{
    File,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

/// <summary>
/// One file of a tree, reduced to what an image must preserve. Directory sizes and times, and symlink
/// times, are left out (they depend on the file system and the extraction order, not on the image).
/// </summary>
/// <param name="Sha256">Hex SHA-256 of a regular file's content.</param>
/// <param name="HardlinkGroup">For a non-directory with more than one name: the ordinally smallest of its names; else null.</param>
/// <param name="Xattrs">Extended attributes as name → hex value.</param>
public sealed record FileTreeEntry(
    FileTreeKind Kind,
    uint Permissions,
    long Uid,
    long Gid,
    long Size,
    string? Sha256,
    string? LinkTarget,
    uint DevMajor,
    uint DevMinor,
    long? Mtime,
    string? HardlinkGroup,
    IReadOnlyDictionary<string, string> Xattrs)
{
    public override string ToString()
    {
        var text = new StringBuilder($"{Kind} {Convert.ToString(Permissions, 8).PadLeft(4, '0')} {Uid}:{Gid}");
        if (Kind == FileTreeKind.File)
        {
            text.Append($" size={Size} sha256={Sha256?[..12]}");
        }

        if (LinkTarget is not null)
        {
            text.Append($" -> {LinkTarget}");
        }

        if (Kind is FileTreeKind.CharDevice or FileTreeKind.BlockDevice)
        {
            text.Append($" dev={DevMajor},{DevMinor}");
        }

        if (Mtime is not null)
        {
            text.Append($" mtime={Mtime}");
        }

        if (HardlinkGroup is not null)
        {
            text.Append($" hardlink-group={HardlinkGroup}");
        }

        foreach (var (name, value) in Xattrs)
        {
            text.Append($" xattr {name}={(value.Length > 40 ? value[..40] + "..." : value)}");
        }

        return text.ToString();
    }
}

/// <summary>
/// A whole file tree as relative path → entry, read from a real directory (an unpacked image, a kernel
/// mount of our ext4) or computed from layers (<see cref="Tar.LayerModel"/>), so two views of one image
/// can be compared entry by entry.
/// </summary>
public sealed class FileTree
{
    public FileTree(IReadOnlyDictionary<string, FileTreeEntry> entries)
    {
        Entries = new SortedDictionary<string, FileTreeEntry>(entries.ToDictionary(), StringComparer.Ordinal);
    }

    /// <summary>Entries by path relative to the root ("etc/passwd"); the root itself is not included.</summary>
    public IReadOnlyDictionary<string, FileTreeEntry> Entries { get; }

    /// <summary>Reads every file under <paramref name="root"/> with lstat, reading content and xattrs.</summary>
    /// <param name="ignore">Relative paths to leave out with everything under them (e.g. "lost+found").</param>
    public static FileTree FromDirectory(string root, params string[] ignore)
    {
        var stats = new Dictionary<string, PosixStat>(StringComparer.Ordinal);
        Walk(root, "", ignore.ToHashSet(StringComparer.Ordinal), stats);

        // Hardlink groups: names that share one inode.
        var groups = stats
            .Where(s => s.Value.FileTypeBits != 0x4000 && s.Value.Links > 1)
            .GroupBy(s => (s.Value.Device, s.Value.Inode))
            .Where(g => g.Count() > 1)
            .SelectMany(g => g.Select(s => (s.Key, Group: g.Select(x => x.Key).Min(StringComparer.Ordinal)!)))
            .ToDictionary(x => x.Key, x => x.Group, StringComparer.Ordinal);

        var entries = new Dictionary<string, FileTreeEntry>(StringComparer.Ordinal);
        foreach (var (relative, stat) in stats)
        {
            var full = Path.Combine(root, relative);
            var kind = KindOf(stat.FileTypeBits);
            var isDevice = kind is FileTreeKind.CharDevice or FileTreeKind.BlockDevice;
            entries[relative] = new FileTreeEntry(
                kind,
                stat.Permissions,
                stat.Uid,
                stat.Gid,
                kind == FileTreeKind.File ? stat.Size : 0,
                kind == FileTreeKind.File ? HashFile(full) : null,
                kind == FileTreeKind.Symlink ? new FileInfo(full).LinkTarget : null,
                isDevice ? stat.DeviceMajor : 0,
                isDevice ? stat.DeviceMinor : 0,
                kind is FileTreeKind.Directory or FileTreeKind.Symlink ? null : stat.MtimeSeconds,
                groups.GetValueOrDefault(relative),
                Xattrs.Get(full).ToDictionary(x => x.Key, x => Convert.ToHexStringLower(x.Value), StringComparer.Ordinal));
        }

        return new FileTree(entries);
    }

    /// <summary>Every difference between <paramref name="expected"/> and <paramref name="actual"/>, one line each.</summary>
    public static IReadOnlyList<string> Compare(FileTree expected, FileTree actual)
    {
        var differences = new List<string>();
        foreach (var (path, want) in expected.Entries)
        {
            if (!actual.Entries.TryGetValue(path, out var got))
            {
                differences.Add($"missing   {path}: {want}");
            }
            else if (!Same(want, got))
            {
                differences.Add($"different {path}:\n    expected {want}\n    actual   {got}");
            }
        }

        foreach (var (path, got) in actual.Entries)
        {
            if (!expected.Entries.ContainsKey(path))
            {
                differences.Add($"extra     {path}: {got}");
            }
        }

        return differences;
    }

    /// <summary>Fails (with every difference listed) unless the trees are the same.</summary>
    public static void AssertSame(FileTree expected, FileTree actual)
    {
        var differences = Compare(expected, actual);
        if (differences.Count > 0)
        {
            var shown = differences.Take(60).ToList();
            if (differences.Count > shown.Count)
            {
                shown.Add($"... and {differences.Count - shown.Count} more");
            }

            Xunit.Assert.Fail($"{differences.Count} differences between the expected and the actual tree:\n{string.Join('\n', shown)}");
        }
    }

    private static bool Same(FileTreeEntry a, FileTreeEntry b) =>
        a with { Xattrs = b.Xattrs } == b
        && a.Xattrs.Count == b.Xattrs.Count
        && a.Xattrs.All(x => b.Xattrs.TryGetValue(x.Key, out var v) && v == x.Value);

    private static void Walk(string root, string relative, HashSet<string> ignore, Dictionary<string, PosixStat> stats)
    {
        var folder = relative.Length == 0 ? root : Path.Combine(root, relative);
        foreach (var full in Directory.EnumerateFileSystemEntries(folder))
        {
            var child = relative.Length == 0 ? Path.GetFileName(full) : relative + "/" + Path.GetFileName(full);
            if (ignore.Contains(child))
            {
                continue;
            }

            var stat = PosixStat.LStat(full);
            stats[child] = stat;
            if (stat.FileTypeBits == 0x4000)
            {
                Walk(root, child, ignore, stats);
            }
        }
    }

    private static FileTreeKind KindOf(uint typeBits) => typeBits switch
    {
        0x8000 => FileTreeKind.File,
        0x4000 => FileTreeKind.Directory,
        0xA000 => FileTreeKind.Symlink,
        0x2000 => FileTreeKind.CharDevice,
        0x6000 => FileTreeKind.BlockDevice,
        0x1000 => FileTreeKind.Fifo,
        0xC000 => FileTreeKind.Socket,
        _ => throw new InvalidDataException($"unknown file type bits 0x{typeBits:x}"),
    };

    private static string HashFile(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
