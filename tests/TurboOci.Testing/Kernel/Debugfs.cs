using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace TurboOci.Testing;

/// <summary>One entry of a directory as `debugfs ls -l` shows it.</summary>
/// <param name="Mode">The full i_mode: file type bits and permissions (e.g. 0100644).</param>
/// <param name="FileType">The directory entry's file type byte (1 regular, 2 directory, 7 symlink...).</param>
public sealed record DebugfsDirEntry(uint Inode, uint Mode, int FileType, uint Uid, uint Gid, ulong Size, string Name)
{
    public bool IsDirectory => (Mode & 0xF000) == 0x4000;

    public bool IsRegularFile => (Mode & 0xF000) == 0x8000;

    public bool IsSymlink => (Mode & 0xF000) == 0xA000;

    /// <summary>Permission bits including setuid/setgid/sticky.</summary>
    public uint Permissions => Mode & 0xFFF;
}

/// <summary>An inode as `debugfs stat` shows it.</summary>
/// <param name="Type">debugfs's type word: regular, directory, symlink, character special, block special, FIFO, socket.</param>
/// <param name="Mode">Permission bits including setuid/setgid/sticky (i_mode &amp; 07777).</param>
/// <param name="Xattrs">Extended attribute names and value lengths; read a value with <see cref="Debugfs.GetXattr"/>.</param>
/// <param name="FastLinkTarget">The target of a symlink stored inside the inode, or null.</param>
/// <param name="Device">Major and minor number of a device node, or null.</param>
/// <param name="BlockMap">The text after EXTENTS: or BLOCKS: (empty for inline or empty files).</param>
public sealed record DebugfsStat(
    uint Inode,
    string Type,
    uint Mode,
    uint Flags,
    uint Uid,
    uint Gid,
    ulong Size,
    uint Links,
    ulong BlockCount,
    DateTimeOffset Mtime,
    DateTimeOffset Atime,
    DateTimeOffset Ctime,
    IReadOnlyDictionary<string, int> Xattrs,
    string? FastLinkTarget,
    (uint Major, uint Minor)? Device,
    string BlockMap,
    string Raw);

/// <summary>
/// Reads ext4 images with the real debugfs (opened read-only) so tests compare our images with what
/// e2fsprogs sees. debugfs reports most errors on stderr with exit code 0, so every call here treats
/// any stderr text beyond its version banner as a failure.
/// </summary>
public static partial class Debugfs
{
    /// <summary>Runs one debugfs request (`debugfs -R request image`) and returns its stdout.</summary>
    public static string Run(string imagePath, string request)
    {
        var result = RunRaw(imagePath, request);
        var errors = ErrorLines(result.Stderr);
        if (result.ExitCode != 0 || errors.Length > 0)
        {
            throw new ToolFailedException("debugfs", ["-R", request, imagePath], result);
        }

        return result.Stdout;
    }

    /// <summary>
    /// Runs one request with the image opened for writing (`debugfs -w`), to damage or patch an image on
    /// purpose; throws on any error.
    /// </summary>
    public static string RunWritable(string imagePath, string request)
    {
        var result = Tool.Run("debugfs", "-w", "-R", request, imagePath);
        if (result.ExitCode != 0 || ErrorLines(result.Stderr).Length > 0)
        {
            throw new ToolFailedException("debugfs", ["-w", "-R", request, imagePath], result);
        }

        return result.Stdout;
    }

    /// <summary>Runs one debugfs request and returns everything, failures included.</summary>
    public static ToolResult RunRaw(string imagePath, string request) => Tool.Run("debugfs", "-R", request, imagePath);

    /// <summary>The entries of directory <paramref name="dir"/>, including "." and "..".</summary>
    public static IReadOnlyList<DebugfsDirEntry> List(string imagePath, string dir)
    {
        var output = Run(imagePath, "ls -l " + Argument(imagePath, dir));
        var entries = new List<DebugfsDirEntry>();
        foreach (var line in output.Split('\n'))
        {
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var match = LsLongLine().Match(line);
            if (!match.Success)
            {
                throw new FormatException($"unexpected debugfs ls -l line: \"{line}\"");
            }

            var inode = uint.Parse(match.Groups["ino"].Value, CultureInfo.InvariantCulture);
            if (inode == 0)
            {
                continue; // an empty slot debugfs lists with DIRENT_FLAG_INCLUDE_EMPTY
            }

            entries.Add(new DebugfsDirEntry(
                inode,
                Convert.ToUInt32(match.Groups["mode"].Value, 8),
                int.Parse(match.Groups["ftype"].Value, CultureInfo.InvariantCulture),
                uint.Parse(match.Groups["uid"].Value, CultureInfo.InvariantCulture),
                uint.Parse(match.Groups["gid"].Value, CultureInfo.InvariantCulture),
                ulong.Parse(match.Groups["size"].Value, CultureInfo.InvariantCulture),
                UnescapeName(match.Groups["name"].Value)));
        }

        return entries;
    }

    /// <summary>The contents of a file, dumped by debugfs.</summary>
    public static byte[] Cat(string imagePath, string path) =>
        ReadThroughFile(imagePath, outFile => $"dump {Argument(imagePath, path)} {outFile}");

    /// <summary>The exact value of one extended attribute of <paramref name="path"/>.</summary>
    public static byte[] GetXattr(string imagePath, string path, string name) =>
        ReadThroughFile(imagePath, outFile => $"ea_get -f {outFile} {Argument(imagePath, path)} {name}");

    // Binary results go through a scratch file: debugfs's stdout is text.
    private static byte[] ReadThroughFile(string imagePath, Func<string, string> request)
    {
        var outFile = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"turbooci-debugfs-{Guid.NewGuid():N}");
        try
        {
            Run(imagePath, request(outFile));
            return File.ReadAllBytes(outFile);
        }
        finally
        {
            File.Delete(outFile);
        }
    }

    /// <summary>The inode behind <paramref name="path"/>, parsed from `stat`.</summary>
    public static DebugfsStat Stat(string imagePath, string path)
    {
        var output = Run(imagePath, "stat " + Argument(imagePath, path));
        return ParseStat(output);
    }

    internal static DebugfsStat ParseStat(string output)
    {
        var header = StatHeader().Match(output);
        var owner = StatOwner().Match(output);
        var links = StatLinks().Match(output);
        if (!header.Success || !owner.Success || !links.Success)
        {
            throw new FormatException($"unexpected debugfs stat output:\n{output}");
        }

        var xattrs = new Dictionary<string, int>(StringComparer.Ordinal);
        var xattrSection = output.IndexOf("Extended attributes:\n", StringComparison.Ordinal);
        if (xattrSection >= 0)
        {
            foreach (var line in output[(xattrSection + "Extended attributes:\n".Length)..].Split('\n'))
            {
                var xattr = XattrLine().Match(line);
                if (!xattr.Success)
                {
                    break;
                }

                xattrs[xattr.Groups["name"].Value] = int.Parse(xattr.Groups["len"].Value, CultureInfo.InvariantCulture);
            }
        }

        var fastLink = FastLink().Match(output);
        var device = DeviceNumbers().Match(output);
        var blockMap = BlockMap().Match(output);
        return new DebugfsStat(
            uint.Parse(header.Groups["ino"].Value, CultureInfo.InvariantCulture),
            header.Groups["type"].Value.Trim(),
            Convert.ToUInt32(header.Groups["mode"].Value, 8),
            Convert.ToUInt32(header.Groups["flags"].Value, 16),
            uint.Parse(owner.Groups["uid"].Value, CultureInfo.InvariantCulture),
            uint.Parse(owner.Groups["gid"].Value, CultureInfo.InvariantCulture),
            ulong.Parse(owner.Groups["size"].Value, CultureInfo.InvariantCulture),
            uint.Parse(links.Groups["links"].Value, CultureInfo.InvariantCulture),
            ulong.Parse(links.Groups["blocks"].Value, CultureInfo.InvariantCulture),
            ParseTime(output, "mtime"),
            ParseTime(output, "atime"),
            ParseTime(output, "ctime"),
            xattrs,
            fastLink.Success ? fastLink.Groups["target"].Value : null,
            device.Success
                ? (uint.Parse(device.Groups["major"].Value, CultureInfo.InvariantCulture), uint.Parse(device.Groups["minor"].Value, CultureInfo.InvariantCulture))
                : null,
            blockMap.Success ? blockMap.Groups["map"].Value.Trim() : "",
            output);
    }

    // "mtime: 0x6553f100:00000000 -- ..." for large inodes (the extra word holds 2 epoch bits and the
    // nanoseconds), "mtime: 0x6553f100 -- ..." for 128-byte inodes.
    private static DateTimeOffset ParseTime(string output, string field)
    {
        var match = Regex.Match(output, $@"(?m)^\s*{field}: 0x(?<secs>[0-9a-f]{{8}})(?::(?<extra>[0-9a-f]{{8}}))?");
        if (!match.Success)
        {
            throw new FormatException($"debugfs stat output has no {field}:\n{output}");
        }

        long seconds = (int)Convert.ToUInt32(match.Groups["secs"].Value, 16);
        long nanoseconds = 0;
        if (match.Groups["extra"].Success)
        {
            var extra = Convert.ToUInt32(match.Groups["extra"].Value, 16);
            seconds += (long)(extra & 3) << 32;
            nanoseconds = extra >> 2;
        }

        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanoseconds / 100);
    }

    /// <summary>
    /// A debugfs command argument naming <paramref name="path"/>: quoted when it holds spaces; debugfs has
    /// no escape for a double quote, so such a path is resolved to its inode number ("&lt;12&gt;").
    /// </summary>
    private static string Argument(string imagePath, string path)
    {
        if (path.StartsWith('<') && path.EndsWith('>'))
        {
            return path;
        }

        if (!path.Contains('"'))
        {
            return $"\"{path}\"";
        }

        var cut = path.TrimEnd('/').LastIndexOf('/');
        var parent = cut <= 0 ? "/" : path[..cut];
        var name = path.TrimEnd('/')[(cut + 1)..];
        var entry = List(imagePath, parent).FirstOrDefault(e => e.Name == name)
            ?? throw new FileNotFoundException($"debugfs: {path} not found in the image", path);
        return $"<{entry.Inode}>";
    }

    // debugfs 1.47 prints non-printable name bytes, and the backslash itself, as \xNN.
    private static string UnescapeName(string escaped)
    {
        if (!escaped.Contains('\\'))
        {
            return escaped;
        }

        var raw = Encoding.UTF8.GetBytes(escaped);
        var bytes = new List<byte>(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == (byte)'\\' && i + 3 < raw.Length && raw[i + 1] == (byte)'x'
                && byte.TryParse(escaped.AsSpan(i + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            {
                bytes.Add(value);
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static string[] ErrorLines(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(line => !DebugfsBanner().IsMatch(line))
            .ToArray();

    [GeneratedRegex(@"^debugfs \d+\.\d+(\.\d+)? \(.*\)$")]
    private static partial Regex DebugfsBanner();

    // "     13  100644 (1)   1000   2000       6 14-Nov-2023 22:13 name"; an empty slot has blanks for the date.
    [GeneratedRegex(@"^[ <]\s*(?<ino>\d+)[ >]\s+(?<mode>[0-7]+) \((?<ftype>\d+)\)\s+(?<uid>\d+)\s+(?<gid>\d+)\s+(?<size>\d+) (?:[ \d]\d-\w{3}-\s*-?\d+ \d\d:\d\d|\s{17}) (?<name>.*)$")]
    private static partial Regex LsLongLine();

    [GeneratedRegex(@"(?m)^Inode: (?<ino>\d+)\s+Type: (?<type>.+?)\s+Mode:\s+(?<mode>[0-7]+)\s+Flags: 0x(?<flags>[0-9a-f]+)")]
    private static partial Regex StatHeader();

    [GeneratedRegex(@"(?m)^User:\s+(?<uid>\d+)\s+Group:\s+(?<gid>\d+)(?:\s+Project:\s+\d+)?\s+Size: (?<size>\d+)")]
    private static partial Regex StatOwner();

    [GeneratedRegex(@"(?m)^Links: (?<links>\d+)\s+Blockcount: (?<blocks>\d+)")]
    private static partial Regex StatLinks();

    [GeneratedRegex(@"^  (?<name>\S+) \((?<len>\d+)\)")]
    private static partial Regex XattrLine();

    [GeneratedRegex(@"(?m)^Fast link dest: ""(?<target>.*)""$")]
    private static partial Regex FastLink();

    [GeneratedRegex(@"(?m)Device major/minor number: (?<major>\d+):(?<minor>\d+)")]
    private static partial Regex DeviceNumbers();

    [GeneratedRegex(@"(?ms)^(?:EXTENTS|BLOCKS):\n(?<map>.*)\z")]
    private static partial Regex BlockMap();
}
