using System.Security.Cryptography;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>Reading filesystems written by e2fsprogs (mke2fs -d, e2fsck -D): the engine must see what the kernel sees.</summary>
public class ReaderTests
{
    /// <summary>Walks the filesystem with the engine and describes it the way <see cref="FileTree"/> does.</summary>
    internal static FileTree ReadTree(Ext4FileSystem fs, params string[] ignore)
    {
        var found = new List<(string Path, uint Ino, Ext4Inode Inode)>();
        Walk(fs, Ext4Constants.RootInode, "", found, ignore);
        var groups = found.Where(f => f.Inode.Type != InodeType.Directory && f.Inode.LinksCount > 1)
            .GroupBy(f => f.Ino).Where(g => g.Count() > 1)
            .SelectMany(g => g.Select(f => (f.Path, Group: g.Select(x => x.Path).Min(StringComparer.Ordinal)!)))
            .ToDictionary(x => x.Path, x => x.Group, StringComparer.Ordinal);
        var entries = new Dictionary<string, FileTreeEntry>(StringComparer.Ordinal);
        foreach (var (path, ino, inode) in found)
        {
            var kind = inode.Type switch
            {
                InodeType.Regular => FileTreeKind.File,
                InodeType.Directory => FileTreeKind.Directory,
                InodeType.Symlink => FileTreeKind.Symlink,
                InodeType.CharDevice => FileTreeKind.CharDevice,
                InodeType.BlockDevice => FileTreeKind.BlockDevice,
                InodeType.Fifo => FileTreeKind.Fifo,
                _ => FileTreeKind.Socket,
            };
            var (major, minor) = kind is FileTreeKind.CharDevice or FileTreeKind.BlockDevice ? Ext4FileSystem.DeviceNumbers(inode) : (0u, 0u);
            entries[path] = new FileTreeEntry(
                kind,
                (uint)(inode.Mode & 0xFFF),
                inode.Uid,
                inode.Gid,
                kind == FileTreeKind.File ? inode.Size : 0,
                kind == FileTreeKind.File ? Convert.ToHexStringLower(SHA256.HashData(fs.ReadFile(ino))) : null,
                kind == FileTreeKind.Symlink ? fs.ReadSymlink(ino) : null,
                major,
                minor,
                kind is FileTreeKind.Directory or FileTreeKind.Symlink ? null : inode.Mtime.Seconds,
                groups.GetValueOrDefault(path),
                fs.ReadXattrs(ino, inode).ToDictionary(x => x.Key, x => Convert.ToHexStringLower(x.Value), StringComparer.Ordinal));
        }

        return new FileTree(entries);
    }

    private static void Walk(Ext4FileSystem fs, uint dir, string prefix, List<(string, uint, Ext4Inode)> found, string[] ignore)
    {
        foreach (var entry in fs.ListDirectory(dir))
        {
            var path = prefix.Length == 0 ? entry.Name : prefix + "/" + entry.Name;
            if (ignore.Contains(path))
            {
                continue;
            }

            var inode = fs.ReadInode(entry.Inode);
            found.Add((path, entry.Inode, inode));
            if (inode.Type == InodeType.Directory)
            {
                Walk(fs, entry.Inode, path, found, ignore);
            }
        }
    }

    private static void Populate(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "dir/sub"));
        File.WriteAllBytes(Path.Combine(root, "dir/small"), "small"u8.ToArray());
        File.WriteAllBytes(Path.Combine(root, "dir/sub/big"), EngineTests.Content(9, 2_000_000));
        File.WriteAllBytes(Path.Combine(root, "empty"), []);
        File.CreateSymbolicLink(Path.Combine(root, "fast"), "dir/small");
        File.CreateSymbolicLink(Path.Combine(root, "slow"), new string('t', 150));
        Tool.RunChecked("ln", Path.Combine(root, "dir/small"), Path.Combine(root, "hard"));
        Xattrs.Set(Path.Combine(root, "dir/small"), "user.inode", "v"u8);
        Xattrs.Set(Path.Combine(root, "empty"), "user.block", EngineTests.Content(4, 700));
        Tool.RunChecked("mknod", Path.Combine(root, "chr"), "c", "4", "64");
        Tool.RunChecked("mkfifo", Path.Combine(root, "fifo"));
        Directory.CreateDirectory(Path.Combine(root, "wide"));
        for (var i = 0; i < 600; i++)
        {
            File.WriteAllBytes(Path.Combine(root, "wide", $"file-number-{i}"), []);
        }

        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Where(p => new FileInfo(p).LinkTarget is null))
        {
            File.SetLastWriteTimeUtc(path, new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        }
    }

    [Theory]
    [InlineData("-b 4096")]
    [InlineData("-b 4096 -O ^metadata_csum,uninit_bg,resize_inode")]
    [InlineData("-b 1024 -O ^metadata_csum,^64bit")]
    public void ReadsWhatMke2fsWroteIncludingHtreeDirectories(string options)
    {
        using var source = new TempDir();
        Populate(source.Path);
        using var image = new ScratchImage(64L << 20);
        image.FormatWithMke2fs(options + " -d " + source.Path);
        var optimise = Tool.Run("e2fsck", "-fyD", image.Path);
        Assert.True(optimise.ExitCode is 0 or 1, optimise.Output);
        Assert.True((Debugfs.Stat(image.Path, "/wide").Flags & 0x1000) != 0, "expected an htree directory");

        using var device = FileBlockSource.OpenRead(image.Path);
        using var fs = Ext4FileSystem.Open(device);
        FileTree.AssertSame(FileTree.FromDirectory(source.Path), ReadTree(fs, "lost+found"));
    }

    [Fact]
    public void CorruptMetadataIsReportedWithItsOffset()
    {
        using var image = EngineTests.MakeImage("ours:metadata_csum", 32L << 20);
        image.Modify(fs => fs.CreateFile(Ext4Constants.RootInode, "f", new InodeAttributes(0x1A4), "x"u8));
        long inodeOffset;
        using (var device = FileBlockSource.OpenRead(image.Path))
        using (var fs = Ext4FileSystem.Open(device))
        {
            var (block, offset) = fs.InodeLocation(fs.Lookup("/f"));
            inodeOffset = block * fs.BlockSize + offset;
        }

        using (var stream = File.OpenWrite(image.Path))
        {
            stream.Position = inodeOffset + 0x18; // i_gid: changes the inode without touching its checksum
            stream.WriteByte(0x42);
        }

        using (var device = FileBlockSource.OpenRead(image.Path))
        using (var fs = Ext4FileSystem.Open(device))
        {
            var error = Assert.Throws<TurboOciFormatException>(() => fs.ReadInode(fs.Lookup("/f")));
            Assert.Contains("i_checksum", error.Field);
            Assert.Equal(inodeOffset + 0x7C, error.Offset);
        }

        using (var stream = File.OpenWrite(image.Path))
        {
            stream.Position = 1024 + 0x20; // s_blocks_per_group: the superblock checksum catches it
            stream.WriteByte(0x11);
        }

        using var again = FileBlockSource.OpenRead(image.Path);
        var sbError = Assert.Throws<TurboOciFormatException>(() => Ext4FileSystem.Open(again));
        Assert.Equal(1024 + 0x3FC, sbError.Offset);
    }
}
