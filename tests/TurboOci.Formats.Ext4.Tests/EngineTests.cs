using System.Security.Cryptography;
using System.Text;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>
/// Builds and changes trees with the engine on filesystems made by mke2fs (every feature set overlaybd
/// and today's mke2fs use) and by our own mkfs; e2fsck -fn and the kernel judge the result.
/// </summary>
public class EngineTests
{
    private static readonly Ext4Time s_mtime = new(1_700_000_000, 123_456_789);
    private static readonly Ext4Time s_dirTime = new(1_600_000_000, 5);

    public static TheoryData<string> FileSystems => new()
    {
        "mke2fs:default",          // metadata_csum, 64bit, flex_bg, journal, orphan_file (e2fsprogs 1.47 defaults)
        "mke2fs:overlaybd-base",   // the base layer's features: uninit_bg instead of metadata_csum, resize_inode, journal
        "mke2fs:1k-no-csum",       // 1 KiB blocks, no checksums, no 64bit
        "ours:metadata_csum",
        "ours:1k-uninit_bg",
    };

    internal static ScratchImage MakeImage(string kind, long size = 256L << 20)
    {
        var image = new ScratchImage(size);
        switch (kind)
        {
            case "mke2fs:default":
                image.FormatWithMke2fs("-b 4096");
                break;
            case "mke2fs:overlaybd-base":
                image.FormatWithMke2fs("-b 4096 -O ^metadata_csum,uninit_bg,64bit,flex_bg,resize_inode,has_journal,^orphan_file -E lazy_itable_init=1");
                break;
            case "mke2fs:overlaybd-base-64g":
                // The base layer's exact geometry: 64 GiB, 512 groups in flex groups of 16, 1024 reserved GDT blocks,
                // most groups INODE_UNINIT|BLOCK_UNINIT. (A small journal keeps the scratch file small.)
                image.Dispose();
                image = new ScratchImage(64L << 30);
                image.FormatWithMke2fs("-b 4096 -J size=4 -O ^metadata_csum,uninit_bg,64bit,flex_bg,resize_inode,has_journal,^orphan_file -E lazy_itable_init=1");
                break;
            case "mke2fs:1k-no-csum":
                image.FormatWithMke2fs("-b 1024 -O ^metadata_csum,^64bit,^orphan_file,^has_journal");
                break;
            case "ours:metadata_csum":
                image.Format(new Ext4CreateOptions { Timestamp = s_dirTime });
                break;
            case "ours:1k-uninit_bg":
                image.Format(new Ext4CreateOptions { BlockSize = 1024, Checksums = Ext4ChecksumMode.UninitBg, SixtyFourBit = false, Timestamp = s_dirTime });
                break;
            default:
                throw new ArgumentException(kind);
        }

        return image;
    }

    internal static byte[] Content(int seed, int length)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static InodeAttributes Attr(ushort mode, uint uid = 0, uint gid = 0) => new(mode, uid, gid, s_mtime, s_mtime);

    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static FileTreeEntry FileEntry(byte[] content, uint mode, long uid = 0, long gid = 0, string? group = null, Dictionary<string, string>? xattrs = null) =>
        new(FileTreeKind.File, mode, uid, gid, content.Length, Sha(content), null, 0, 0, s_mtime.Seconds, group, xattrs ?? []);

    private static FileTreeEntry DirEntry(uint mode, long uid = 0, long gid = 0) =>
        new(FileTreeKind.Directory, mode, uid, gid, 0, null, null, 0, 0, null, null, new Dictionary<string, string>());

    private static FileTreeEntry Special(FileTreeKind kind, uint mode, uint major = 0, uint minor = 0) =>
        new(kind, mode, 0, 0, 0, null, null, major, minor, s_mtime.Seconds, null, new Dictionary<string, string>());

    private static FileTreeEntry Link(string target) =>
        new(FileTreeKind.Symlink, 0x1FF, 0, 0, 0, null, target, 0, 0, null, null, new Dictionary<string, string>());

    [Theory]
    [MemberData(nameof(FileSystems))]
    public void BuildsEveryKindOfFileAndTheKernelSeesExactlyThat(string kind)
    {
        using var image = MakeImage(kind);
        var small = "hello, ext4\n"u8.ToArray();
        var big = Content(1, 3 << 20);
        var bigXattr = Content(2, 700); // too big for the inode, fits a 1 KiB block
        var slowTarget = "../" + new string('x', 200) + "/target";
        var sparseTail = Content(3, 5000);
        const long sparseSize = 5L << 30;
        var fragments = Enumerable.Range(0, 1400).Select(i => ((long)i * 8192, new[] { (byte)(i % 251 + 1) })).ToList();
        var fragmentedSize = 1400L * 8192;

        image.Modify(fs =>
        {
            var root = Ext4Constants.RootInode;
            var a = fs.CreateDirectory(root, "a", Attr(0x1ED, 1000, 1000));
            var b = fs.CreateDirectory(a, "b", Attr(0x1C0, 5, 6));
            fs.CreateDirectory(b, "c", Attr(0x1FF));
            var smallIno = fs.CreateFile(a, "small.txt", Attr(0x1A4, 1000, 100), small);
            fs.CreateFile(a, "empty", Attr(0x180), ReadOnlySpan<byte>.Empty);
            fs.CreateFile(b, "big.bin", Attr(0x9ED), big); // setuid 0755
            fs.CreateSymlink(a, "fast", "small.txt", Attr(0));
            fs.CreateSymlink(a, "slow", slowTarget, Attr(0));
            fs.CreateHardLink(b, "hard", smallIno);
            fs.CreateSpecial(root, "null", InodeType.CharDevice, 1, 3, Attr(0x1B6));
            fs.CreateSpecial(root, "disk", InodeType.BlockDevice, 259, 70000, Attr(0x1B0));
            fs.CreateSpecial(root, "fifo", InodeType.Fifo, 0, 0, Attr(0x1A4));
            fs.CreateSpecial(root, "sock", InodeType.Socket, 0, 0, Attr(0x1ED));
            var x = fs.CreateFile(root, "xattrs", Attr(0x1A4), small);
            fs.SetXattrs(x, new Dictionary<string, byte[]> { ["user.small"] = "v"u8.ToArray(), ["user.big"] = bigXattr, ["trusted.t"] = [] });
            var y = fs.CreateFile(root, "xattr-inline", Attr(0x1A4), small);
            fs.SetXattrs(y, new Dictionary<string, byte[]> { ["user.one"] = "1"u8.ToArray(), ["security.two"] = "22"u8.ToArray() });
            fs.CreateSparseFile(root, "sparse", Attr(0x1A4), sparseSize, [(0, small), (sparseSize - sparseTail.Length, sparseTail)]);
            fs.CreateSparseFile(root, "fragmented", Attr(0x1A4), fragmentedSize, fragments);
        });
        Ext4Tools.AssertClean(image.Path);

        var fragmentedContent = new byte[fragmentedSize];
        foreach (var (offset, data) in fragments)
        {
            fragmentedContent[offset] = data[0];
        }

        var expected = new Dictionary<string, FileTreeEntry>
        {
            ["a"] = DirEntry(0x1ED, 1000, 1000),
            ["a/b"] = DirEntry(0x1C0, 5, 6),
            ["a/b/c"] = DirEntry(0x1FF),
            ["a/small.txt"] = FileEntry(small, 0x1A4, 1000, 100, group: "a/b/hard"),
            ["a/b/hard"] = FileEntry(small, 0x1A4, 1000, 100, group: "a/b/hard"),
            ["a/empty"] = FileEntry([], 0x180),
            ["a/b/big.bin"] = FileEntry(big, 0x9ED),
            ["a/fast"] = Link("small.txt"),
            ["a/slow"] = Link(slowTarget),
            ["null"] = Special(FileTreeKind.CharDevice, 0x1B6, 1, 3),
            ["disk"] = Special(FileTreeKind.BlockDevice, 0x1B0, 259, 70000),
            ["fifo"] = Special(FileTreeKind.Fifo, 0x1A4),
            ["sock"] = Special(FileTreeKind.Socket, 0x1ED),
            ["xattrs"] = FileEntry(small, 0x1A4, xattrs: new() { ["user.small"] = "76", ["user.big"] = Convert.ToHexStringLower(bigXattr), ["trusted.t"] = "" }),
            ["xattr-inline"] = FileEntry(small, 0x1A4, xattrs: new() { ["user.one"] = "31", ["security.two"] = "3232" }),
            ["fragmented"] = FileEntry(fragmentedContent, 0x1A4),
        };

        using (var mount = Ext4Mount.Mount(image.Path))
        {
            var actual = FileTree.FromDirectory(mount.MountPoint, "lost+found", "sparse");
            FileTree.AssertSame(new FileTree(expected), actual);

            // The sparse file: > 4 GiB, holes read as zeros, and only two blocks allocated.
            var sparse = new FileInfo(mount.PathOf("sparse"));
            Assert.Equal(sparseSize, sparse.Length);
            using var stream = sparse.OpenRead();
            var head = new byte[8192];
            stream.ReadExactly(head);
            Assert.Equal(small, head[..small.Length]);
            Assert.All(head[small.Length..], v => Assert.Equal(0, v));
            stream.Position = sparseSize - sparseTail.Length - 100;
            var tail = new byte[sparseTail.Length + 100];
            stream.ReadExactly(tail);
            Assert.All(tail[..100], v => Assert.Equal(0, v));
            Assert.Equal(sparseTail, tail[100..]);

            // Nanosecond mtimes, as the kernel reports them.
            var stat = Tool.RunChecked("stat", "-c", "%y", mount.PathOf("a/small.txt")).Stdout;
            Assert.Contains(".123456789", stat);
        }

        var fragStat = Debugfs.Stat(image.Path, "/fragmented");
        Assert.Contains("(ETB", fragStat.Raw); // a deeper tree than the inode's four slots
    }
}
