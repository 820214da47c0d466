using System.Formats.Tar;
using System.Text;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>Hostile layers, written with .NET's own TarWriter: applied safely or refused, never an inconsistent filesystem.</summary>
public class MaliciousLayerTests
{
    private static byte[] Tar(Action<TarWriter> write)
    {
        var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(writer);
        }

        return output.ToArray();
    }

    private static PaxTarEntry File(string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4) =>
        new(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        };

    private static PaxTarEntry Entry(TarEntryType type, string name, string link = "")
    {
        var entry = new PaxTarEntry(type, name) { Mode = (UnixFileMode)0x1ED, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) };
        if (link.Length > 0)
        {
            entry.LinkName = link;
        }

        return entry;
    }

    private static void Apply(ScratchImage image, byte[] tar, LayerDataMode mode = LayerDataMode.Copied)
    {
        using var device = image.OpenWritable();
        using var fs = Ext4FileSystem.Open(device, writable: true);
        new OciLayerApplier(fs, mode, new NullMapper()).Apply(new MemoryStream(tar));
    }

    private sealed class NullMapper : IFileDataMapper
    {
        public void Map(long deviceOffset, long length, long tarOffset)
        {
        }
    }

    [Fact]
    public void TraversalAndAbsolutePathsStayInsideTheRoot()
    {
        using var image = EngineTests.MakeImage("ours:metadata_csum");
        Apply(image, Tar(w =>
        {
            w.WriteEntry(File("../../escape.txt", "1"));
            w.WriteEntry(File("/abs/file", "2"));
            w.WriteEntry(File("a/../../../b", "3"));
            w.WriteEntry(File("./c/./d//e", "4"));
        }));
        Ext4Tools.AssertClean(image.Path);

        using var mount = Ext4Mount.Mount(image.Path);
        Assert.Equal("1", System.IO.File.ReadAllText(mount.PathOf("escape.txt")));
        Assert.Equal("2", System.IO.File.ReadAllText(mount.PathOf("abs/file")));
        Assert.Equal("3", System.IO.File.ReadAllText(mount.PathOf("b")));
        Assert.Equal("4", System.IO.File.ReadAllText(mount.PathOf("c/d/e")));
        Assert.Equal(["abs", "b", "c", "escape.txt", "lost+found"], Directory.EnumerateFileSystemEntries(mount.MountPoint).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void WritesThroughASymlinkNeverFollowIt()
    {
        using var image = EngineTests.MakeImage("ours:metadata_csum");
        Apply(image, Tar(w =>
        {
            w.WriteEntry(Entry(TarEntryType.Directory, "etc/"));
            w.WriteEntry(File("etc/passwd", "original"));
            w.WriteEntry(Entry(TarEntryType.SymbolicLink, "link", "/etc"));
            w.WriteEntry(Entry(TarEntryType.SymbolicLink, "up", "../../.."));
            w.WriteEntry(File("link/passwd", "attacker"));
            w.WriteEntry(File("up/outside", "attacker"));
        }));
        Ext4Tools.AssertClean(image.Path);

        using var mount = Ext4Mount.Mount(image.Path);
        Assert.Equal("original", System.IO.File.ReadAllText(mount.PathOf("etc/passwd")));
        Assert.Equal("attacker", System.IO.File.ReadAllText(mount.PathOf("link/passwd")));
        Assert.True(Directory.Exists(mount.PathOf("link")) && new DirectoryInfo(mount.PathOf("link")).LinkTarget is null);
        Assert.Equal("attacker", System.IO.File.ReadAllText(mount.PathOf("up/outside")));
    }

    [Fact]
    public void DuplicateEntriesLeaveTheLastOne()
    {
        using var image = EngineTests.MakeImage("ours:metadata_csum");
        Apply(image, Tar(w =>
        {
            w.WriteEntry(File("dup", "first"));
            w.WriteEntry(Entry(TarEntryType.Directory, "dup/"));
            w.WriteEntry(File("dup/child", "child"));
            w.WriteEntry(File("dup", "last"));
            w.WriteEntry(Entry(TarEntryType.HardLink, "dup-link", "dup"));
            w.WriteEntry(Entry(TarEntryType.HardLink, "dup-link", "dup"));
        }));
        Ext4Tools.AssertClean(image.Path);

        using var mount = Ext4Mount.Mount(image.Path);
        Assert.Equal("last", System.IO.File.ReadAllText(mount.PathOf("dup")));
        Assert.Equal(2UL, PosixStat.LStat(mount.PathOf("dup")).Links);
    }

    public static TheoryData<string, string> RefusedLayers => new()
    {
        { "hardlink-to-missing", "does not exist" },
        { "hardlink-to-later", "does not exist" },
        { "hardlink-to-directory", "is a directory" },
        { "hardlink-through-symlink", "does not exist" },
        { "truncated-data", "ends" },
        { "truncated-header", "ends inside a header" },
        { "bad-checksum", "chksum" },
        { "no-end-marker", "two zero blocks" },
        { "name-too-long", "not a valid file name" },
    };

    [Theory]
    [MemberData(nameof(RefusedLayers))]
    public void MalformedLayersAreRefusedWithTheEntryAndOffsetAndTheFilesystemStaysConsistent(string kind, string expected)
    {
        var good = File("good", "fine");
        byte[] tar = kind switch
        {
            "hardlink-to-missing" => Tar(w => w.WriteEntry(Entry(TarEntryType.HardLink, "bad", "missing"))),
            "hardlink-to-later" => Tar(w =>
            {
                w.WriteEntry(Entry(TarEntryType.HardLink, "bad", "later"));
                w.WriteEntry(File("later", "x"));
            }),
            "hardlink-to-directory" => Tar(w =>
            {
                w.WriteEntry(Entry(TarEntryType.Directory, "dir/"));
                w.WriteEntry(Entry(TarEntryType.HardLink, "bad", "dir"));
            }),
            "hardlink-through-symlink" => Tar(w =>
            {
                w.WriteEntry(Entry(TarEntryType.Directory, "real/"));
                w.WriteEntry(File("real/file", "x"));
                w.WriteEntry(Entry(TarEntryType.SymbolicLink, "sym", "real"));
                w.WriteEntry(Entry(TarEntryType.HardLink, "bad", "sym/file"));
            }),
            "truncated-data" => Tar(w =>
            {
                w.WriteEntry(good);
                w.WriteEntry(File("big", new string('x', 5000)));
            })[..(512 * 4 + 512 * 3 + 1000)],
            "truncated-header" => Tar(w => w.WriteEntry(good))[..(1024 + 100)], // PAX header, PAX records, then the cut header
            "bad-checksum" => Corrupt(Tar(w => w.WriteEntry(good)), 512 * 2 + 10),
            "no-end-marker" => Tar(w => w.WriteEntry(good))[..(512 * 4)],
            "name-too-long" => Tar(w => w.WriteEntry(File(new string('n', 300), "x"))),
            _ => throw new ArgumentException(kind),
        };

        foreach (var mode in new[] { LayerDataMode.Copied, LayerDataMode.Mapped })
        {
            using var image = EngineTests.MakeImage("ours:metadata_csum");
            var error = Assert.Throws<TurboOciFormatException>(() => Apply(image, tar, mode));
            Assert.Contains(expected, error.Message);
            Assert.Equal("tar", error.Format);
            Assert.InRange(error.Offset, 0, tar.Length);
            Ext4Tools.AssertClean(image.Path);
        }
    }

    private static byte[] Corrupt(byte[] tar, int offset)
    {
        tar[offset] ^= 0x55;
        return tar;
    }
}
