using System.Formats.Tar;
using System.Text;
using TurboOci.Images.Indexing;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Images.Tests.Malicious;

/// <summary>
/// Hostile layers at the indexer level: real .tar.gz blobs (tars from .NET's TarWriter, compressed by the gzip
/// tool) indexed by <see cref="StackIndexer"/> in mapped mode on overlaybd's base, where a lower layer's symlinks
/// and the gzip pipeline come into play. Each layer is applied safely (the exported disk passes e2fsck -fn and
/// the kernel shows everything inside the root, file data read back through the gzip index) or refused with an
/// error naming the entry and its offset, leaving no layer folder and no config behind. The single-layer cases
/// on a bare filesystem are in Formats.Ext4.Tests/MaliciousLayerTests.
/// </summary>
public sealed class MaliciousStackTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void ALowerLayersSymlinksAreNeverFollowedByWritesOfTheLayersAbove()
    {
        using var work = new TempDir();
        var lower = Blob(work, "lower", w =>
        {
            w.WriteEntry(Directory("etc/"));
            w.WriteEntry(File("etc/passwd", "root:x:0:0"));
            w.WriteEntry(Symlink("link", "/etc"));
            w.WriteEntry(Symlink("up", "../../.."));
            w.WriteEntry(Symlink("self", "."));
        });
        var upper = Blob(work, "upper", w =>
        {
            w.WriteEntry(File("link/passwd", "attacker"));
            w.WriteEntry(File("up/outside", "attacker"));
            w.WriteEntry(File("self/inside", "fine"));
            w.WriteEntry(File("../../escape", "escaped?"));
            w.WriteEntry(File("/abs/file", "absolute"));
        });

        var tree = IndexAndMount(work, [lower, upper]);
        Assert.Equal("root:x:0:0", tree["etc/passwd"]);
        Assert.Equal("attacker", tree["link/passwd"]);
        Assert.Equal("attacker", tree["up/outside"]);
        Assert.Equal("fine", tree["self/inside"]);
        Assert.Equal("escaped?", tree["escape"]);
        Assert.Equal("absolute", tree["abs/file"]);
        Assert.Equal(["abs", "escape", "etc", "link", "self", "up"], tree.Keys.Where(k => !k.Contains('/')).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void DuplicateEntriesInAGzipLayerLeaveTheLastOneWithItsOwnData()
    {
        using var work = new TempDir();
        var blob = Blob(work, "dups", w =>
        {
            w.WriteEntry(File("dup", new string('1', 9000)));
            w.WriteEntry(Directory("dup/"));
            w.WriteEntry(File("dup/child", "child"));
            w.WriteEntry(File("dup", "last"));
            w.WriteEntry(File("same", "first"));
            w.WriteEntry(File("same", "second, longer than the first"));
        });

        var tree = IndexAndMount(work, [blob]);
        Assert.Equal("last", tree["dup"]);
        Assert.Equal("second, longer than the first", tree["same"]);
        Assert.DoesNotContain("dup/child", tree.Keys);
    }

    public static TheoryData<string, string> RefusedLayers => new()
    {
        { "hardlink-to-missing", "'bad'" },
        { "hardlink-to-later", "'bad'" },
        { "size-beyond-the-tar", "'big'" },
        { "truncated-tar", "two zero blocks" },
        { "truncated-gzip", "truncated" },
        { "corrupt-gzip-crc", "gzip" },
    };

    [Theory]
    [MemberData(nameof(RefusedLayers))]
    public void AHostileSecondLayerIsRefusedNamingTheEntryAndLeavesNothingHalfWritten(string kind, string expected)
    {
        using var work = new TempDir();
        var good = Blob(work, "good", w => w.WriteEntry(File("good", "fine")));
        var bad = kind switch
        {
            "hardlink-to-missing" => Blob(work, kind, w => w.WriteEntry(Link("bad", "missing"))),
            "hardlink-to-later" => Blob(work, kind, w =>
            {
                w.WriteEntry(Link("bad", "later"));
                w.WriteEntry(File("later", "x"));
            }),
            "size-beyond-the-tar" => GzipBytes(work, kind, Tar(w => w.WriteEntry(File("big", new string('x', 100_000))))[..(512 * 3 + 4096)]),
            "truncated-tar" => GzipBytes(work, kind, Tar(w => w.WriteEntry(File("small", "x")))[..(512 * 4)]),
            "truncated-gzip" => Cut(Blob(work, kind, w => w.WriteEntry(File("noise", Noise(200_000)))), keep: 0.5),
            "corrupt-gzip-crc" => FlipTrailerCrc(Blob(work, kind, w => w.WriteEntry(File("noise", Noise(20_000))))),
            _ => throw new ArgumentException(kind),
        };

        var folder = work.File("out");
        var error = Assert.Throws<TurboOciFormatException>(() => StackIndexer.Index([good, bad], folder));
        output.WriteLine($"{error.Format} {error.Field} @{error.Offset}: {error.Message}");
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        var blobLength = new FileInfo(bad).Length;
        var (low, high) = kind switch
        {
            "hardlink-to-missing" or "hardlink-to-later" => (1024L, 1024L), // the entry's ustar header, after TarWriter's PAX header and records
            "size-beyond-the-tar" => (512 * 3 + 4096, 512 * 3 + 4096), // where the cut tar ends, inside big's data
            "truncated-tar" => (2048, 2048), // where the cut tar ends, in place of the zero blocks
            "truncated-gzip" => (blobLength, blobLength), // compressed offset: the end of the cut blob
            _ => (blobLength - 8, blobLength), // the member trailer holding the flipped CRC
        };
        Assert.InRange(error.Offset, low, high);

        // The good layer's folder and the base stay; no folder for the refused layer, no config for a stack that is not whole.
        Assert.Equal(["0-", StackIndexer.BaseFolder], System.IO.Directory.EnumerateDirectories(folder).Select(d => Path.GetFileName(d)!).Select(n => n.StartsWith("0-", StringComparison.Ordinal) ? "0-" : n).Order(StringComparer.Ordinal));
        Assert.False(System.IO.File.Exists(Path.Combine(folder, StackIndexer.ConfigName)));
    }

    /// <summary>Indexes the stack, exports it, checks it with e2fsck, mounts it: path → content of each regular file, else its kind.</summary>
    private static Dictionary<string, string> IndexAndMount(TempDir work, string[] blobs)
    {
        var output = work.File("out");
        StackIndexer.Index(blobs, output);
        var contents = new Dictionary<string, string>(StringComparer.Ordinal);
        var tree = ExportedDisk.CheckAndRead(ImageConfig.Load(Path.Combine(output, StackIndexer.ConfigName)), work.File("disk.img"), (mountPoint, mounted) =>
        {
            foreach (var (path, entry) in mounted.Entries.Where(e => e.Value.Kind == FileTreeKind.File))
            {
                contents[path] = System.IO.File.ReadAllText(Path.Combine(mountPoint, path));
            }
        });
        return tree.Entries.ToDictionary(e => e.Key, e => contents.GetValueOrDefault(e.Key) ?? e.Value.Kind.ToString(), StringComparer.Ordinal);
    }

    private static PaxTarEntry File(string name, string content) =>
        new(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = (UnixFileMode)0x1A4,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        };

    private static PaxTarEntry Directory(string name) =>
        new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

    private static PaxTarEntry Symlink(string name, string target) =>
        new(TarEntryType.SymbolicLink, name) { LinkName = target, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

    private static PaxTarEntry Link(string name, string target) =>
        new(TarEntryType.HardLink, name) { LinkName = target, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };

    private static string Noise(int length)
    {
        var random = new Random(length);
        return string.Create(length, random, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = (char)r.Next(33, 127);
            }
        });
    }

    private static byte[] Tar(Action<TarWriter> write)
    {
        var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(writer);
        }

        return output.ToArray();
    }

    private static string Blob(TempDir work, string name, Action<TarWriter> write) => GzipBytes(work, name, Tar(write));

    /// <summary>Compressed by the real gzip tool, as a registry layer would be.</summary>
    private static string GzipBytes(TempDir work, string name, byte[] tar)
    {
        var path = work.File(name + ".tar.gz");
        using var output = System.IO.File.Create(path);
        Tool.RunFilterChecked("gzip", ["-n", "-c"], input => input.Write(tar), output);
        return path;
    }

    private static string Cut(string path, double keep)
    {
        var bytes = System.IO.File.ReadAllBytes(path);
        System.IO.File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);
        return path;
    }

    private static string FlipTrailerCrc(string path)
    {
        var bytes = System.IO.File.ReadAllBytes(path);
        bytes[^8] ^= 0xFF;
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }
}
