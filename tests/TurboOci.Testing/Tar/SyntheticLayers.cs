using System.Text;

namespace TurboOci.Testing.Tar;

/// <summary>
/// A catalogue of small generated layers that together form a multi-layer image exercising every edge
/// case an image indexer meets: all file kinds, owners, modes, xattrs, long and non-ASCII names in every
/// encoding, whiteouts, opaque directories, files replaced by directories and back, hardlinks across
/// layers. <see cref="Image"/> stacks them; <see cref="LayerModel.Merge"/> gives the expected result.
/// Every call builds a fresh description (cheap: content is generated only when written).
/// </summary>
public static class SyntheticLayers
{
    /// <summary>security.capability granting cap_net_raw (VFS_CAP_REVISION_2, effective bit set).</summary>
    public static readonly byte[] NetRawCapability = Convert.FromHexString("0100000200200000000000000000000000000000");

    /// <summary>A symlink target over 60 bytes: ext4 cannot store it inside the inode.</summary>
    public static readonly string LongSymlinkTarget = "/usr/share/" + string.Concat(Enumerable.Repeat("long-target-segment/", 3)) + "end";

    /// <summary>A symlink target over 100 bytes: needs a PAX linkpath (or GNU K) record.</summary>
    public static readonly string VeryLongSymlinkTarget = "../" + string.Concat(Enumerable.Repeat("a-very-long-link-target-part/", 5)) + "file";

    /// <summary>A path of about 250 bytes that no ustar split can hold (one 120-byte component).</summary>
    public static readonly string PaxLongDirectory = "opt/long/" + new string('p', 120);

    /// <summary>A directory whose full path is over 100 bytes, written with GNU ././@LongLink entries.</summary>
    public static readonly string GnuLongDirectory = "opt/long/" + new string('g', 110);

    /// <summary>The number of entries in <see cref="WideDirectory"/>.</summary>
    public const int WideDirectoryEntries = 20_000;

    /// <summary>The bottom layer: a small root file system with one of everything.</summary>
    public static TarLayerBuilder Base()
    {
        var layer = new TarLayerBuilder("base");
        foreach (var dir in new[] { "bin", "dev", "etc", "opt", "usr", "usr/bin", "usr/share", "var", "var/log", "var/cache", "var/cache/junk" })
        {
            layer.Directory(dir);
        }

        layer.Directory("tmp", mode: "1777")
            .Directory("home", mode: "755")
            .Directory("home/user", mode: "700", uid: 1000, gid: 1000, xattrs: Xattr("user.comment", "home of user"))
            .File("etc/hostname", "synthetic\n")
            .File("etc/motd", "base motd\n")
            .File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
            .File("etc/shadow", "root:*:19000:0:99999:7:::\n", mode: "640", gid: 42)
            .EmptyFile("etc/empty")
            .File("etc/after-2038", "mtime past 32-bit seconds\n", mtime: 4_102_444_800) // 2100-01-01
            .File("etc/before-1970", "negative mtime, only expressible in PAX\n", mtime: -86_400)
            .File("home/user/notes.txt", "private\n", mode: "600", uid: 1000, gid: 1000, mtime: 1_600_000_000)
            .File("usr/bin/tool", TarContent.Pattern(200_000, seed: 1), mode: "755")
            .File("usr/bin/suid-tool", TarContent.Pattern(5000, seed: 2), mode: "4755")
            .File("usr/bin/sgid-tool", TarContent.Pattern(3000, seed: 3), mode: "2755", gid: 5)
            .File("usr/bin/ping", TarContent.Pattern(30_000, seed: 4), mode: "755",
                xattrs: new Dictionary<string, byte[]> { ["security.capability"] = NetRawCapability })
            .File("usr/share/xattrs.txt", "several xattrs\n", xattrs: new Dictionary<string, byte[]>
            {
                // No empty value: in PAX an empty record value means "unset", so GNU tar and umoci drop it.
                ["user.binary"] = [0, 1, 2, 0xFF, (byte)'\n', (byte)'='],
                ["user.long"] = Encoding.ASCII.GetBytes(new string('x', 1000)),
                ["trusted.overlay.test"] = "y"u8.ToArray(),
            })
            .File("usr/share/big-uid", "owned by a uid over 2^21\n", uid: 3_000_000, gid: 3_000_001)
            .File("usr/share/zeros.bin", TarContent.Zeros(1 << 20))
            .File("usr/share/exact-block.bin", TarContent.Pattern(4096, seed: 5))
            .Hardlink("usr/bin/tool-hardlink", "usr/bin/tool")
            .Symlink("bin/sh", "/usr/bin/tool")
            .Symlink("bin/tool", "../usr/bin/tool")
            .Symlink("usr/share/long-symlink", LongSymlinkTarget)
            .Symlink("usr/share/very-long-symlink", VeryLongSymlinkTarget)
            .Symlink("usr/share/dangling", "does/not/exist")
            .CharDevice("dev/null", 1, 3, mode: "666")
            .CharDevice("dev/big-numbers", 511, 300_000, mode: "600")
            .BlockDevice("dev/sda", 8, 0, mode: "660", gid: 6)
            .Fifo("dev/initctl", mode: "600")
            .File("var/log/old.log", "old log\n")
            .File("var/cache/junk/a", "a\n")
            .File("var/cache/junk/b", "b\n");

        // Names in every encoding.
        layer.Directory("opt/long")
            .Directory(PaxLongDirectory)
            .File(PaxLongDirectory + "/" + new string('f', 101), "PAX path over 200 bytes\n")
            .Directory(GnuLongDirectory, nameEncoding: TarNameEncoding.GnuLongLink)
            .File(GnuLongDirectory + "/gnu-long-name.txt", "GNU longname\n", nameEncoding: TarNameEncoding.GnuLongLink)
            .Symlink(GnuLongDirectory + "/gnu-long-link", VeryLongSymlinkTarget, nameEncoding: TarNameEncoding.GnuLongLink)
            .File("opt/long/" + new string('e', 91), "name of exactly 100 bytes\n")
            .Directory("opt/long/" + new string('u', 90))
            .File("opt/long/" + new string('u', 90) + "/" + new string('s', 60), "ustar prefix/name split\n")
            .Directory("opt/ünïcødé")
            .File("opt/ünïcødé/naïve €.txt", "PAX path (non-ASCII)\n")
            .File("opt/ünïcødé/raw-utf8-ñ.txt", "raw UTF-8 in the ustar field\n", nameEncoding: TarNameEncoding.RawUtf8)
            .File("opt/ünïcødé/gnu-ü.txt", "GNU encoding\n", nameEncoding: TarNameEncoding.GnuLongLink)
            .Directory("opt/日本語")
            .File("opt/日本語/ファイル.txt", "日本語のテキスト\n")
            .File("opt/with space and 'quotes\".txt", "odd characters\n")
            .File("opt/short-name-in-pax", "a short ASCII name that still has a PAX path record\n", nameEncoding: TarNameEncoding.Pax)
            .Symlink("opt/ünïcødé/link-ü", "naïve €.txt");

        // Paths the later layers replace, delete or hide.
        layer.File("opt/file-then-dir", "a file in the base layer\n")
            .Directory("opt/dir-then-file")
            .File("opt/dir-then-file/child", "child of a directory the next layer replaces\n")
            .Directory("opt/opaque")
            .File("opt/opaque/lower-a", "hidden by the opaque marker\n")
            .Directory("opt/opaque/sub")
            .File("opt/opaque/sub/lower-c", "hidden too\n");
        return layer;
    }

    /// <summary>Layer 2: whiteouts, an opaque directory, type changes, metadata changes, cross-layer hardlinks.</summary>
    public static TarLayerBuilder Changes()
    {
        return new TarLayerBuilder("changes")
            .Directory("etc")
            .File("etc/hostname", "changed\n")
            .Whiteout("etc/motd")
            .File("etc/motd", "motd deleted and re-added in one layer\n")
            .Directory("var")
            .Directory("var/log")
            .Whiteout("var/log/old.log")
            .Directory("var/cache")
            .Whiteout("var/cache/junk")
            .Whiteout("var/cache/never-existed")
            .Directory("opt")
            .Opaque("opt/opaque")
            .Directory("opt/opaque")
            .File("opt/opaque/upper.txt", "only file left after the opaque marker\n")
            .Directory("opt/file-then-dir", mode: "750")
            .File("opt/file-then-dir/child", "the file became a directory\n")
            .File("opt/dir-then-file", "the directory became a file\n", mode: "600")
            .Hardlink("opt/link-to-lower", "etc/passwd")
            .Directory("usr")
            .Directory("usr/share", mode: "750", uid: 5, gid: 6, xattrs: Xattr("user.changed", "metadata only"))
            .File("usr/share/added.txt", TarContent.Pattern(70_000, seed: 6))
            .Directory("dev")
            .CharDevice("dev/zero", 1, 5)
            .Fifo("dev/new-fifo", mode: "620")
            .Directory("tmp", mode: "1777")
            .Symlink("tmp/symlink-to-dir", "/opt/opaque");
    }

    /// <summary>Layer 3: types change back, a hardlinked file's other name is deleted, a lower file is replaced by a symlink.</summary>
    public static TarLayerBuilder Back()
    {
        return new TarLayerBuilder("back")
            .Directory("opt")
            .File("opt/file-then-dir", "a file again\n", mode: "640")
            .Directory("opt/dir-then-file")
            .File("opt/dir-then-file/again", "a directory again\n")
            .Directory("usr")
            .Directory("usr/bin")
            .Whiteout("usr/bin/tool") // usr/bin/tool-hardlink keeps the data
            .Symlink("usr/bin/suid-tool", "sgid-tool")
            .Directory("etc")
            .Whiteout("etc/passwd") // opt/link-to-lower keeps the data
            .File("etc/new-in-back", "added by layer 3\n");
    }

    /// <summary>A layer with one directory of <paramref name="count"/> entries (small files, every 100th with data).</summary>
    public static TarLayerBuilder WideDirectory(int count = WideDirectoryEntries)
    {
        var layer = new TarLayerBuilder("wide").Directory("wide");
        for (var i = 0; i < count; i++)
        {
            var name = $"wide/entry-{i:D5}";
            if (i % 100 == 0)
            {
                layer.File(name, $"entry {i}\n");
            }
            else
            {
                layer.EmptyFile(name);
            }
        }

        return layer;
    }

    /// <summary>
    /// An opt-in layer with a file of <paramref name="size"/> zero bytes (default just over 4 GiB, so 32-bit
    /// sizes overflow), generated while streaming.
    /// </summary>
    public static TarLayerBuilder HugeFile(long size = HugeFileSize) =>
        new TarLayerBuilder("huge").Directory("huge").File("huge/zeros.bin", TarContent.Zeros(size));

    /// <summary>The default size of <see cref="HugeFile"/>: 4 GiB + 12345 bytes.</summary>
    public const long HugeFileSize = (4L << 30) + 12345;

    /// <summary>The standard synthetic image: Base, Changes, Back, and optionally the 20,000-entry directory.</summary>
    public static IReadOnlyList<TarLayerBuilder> Image(bool includeWideDirectory = true) =>
        includeWideDirectory ? [Base(), Changes(), Back(), WideDirectory()] : [Base(), Changes(), Back()];

    private static Dictionary<string, byte[]> Xattr(string name, string value) => new() { [name] = Encoding.UTF8.GetBytes(value) };
}
