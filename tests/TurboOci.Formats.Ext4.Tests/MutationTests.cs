using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>Deleting, replacing and growing: every change must leave e2fsck nothing to say.</summary>
public class MutationTests
{
    private static readonly InodeAttributes s_file = new(0x1A4, Mtime: new Ext4Time(1_650_000_000, 0));
    private static readonly InodeAttributes s_dir = new(0x1ED, Mtime: new Ext4Time(1_650_000_000, 0));

    [Theory]
    [MemberData(nameof(EngineTests.FileSystems), MemberType = typeof(EngineTests))]
    public void DeletingWholeTreesReturnsEveryBlockAndInode(string kind)
    {
        using var image = EngineTests.MakeImage(kind);
        long freeBlocks = 0, freeInodes = 0;
        image.Modify(fs =>
        {
            freeBlocks = fs.Superblock.FreeBlocksCount;
            freeInodes = fs.Superblock.FreeInodesCount;
            var top = fs.CreateDirectory(Ext4Constants.RootInode, "top", s_dir);
            for (var d = 0; d < 5; d++)
            {
                var dir = fs.CreateDirectory(top, $"d{d}", s_dir);
                for (var f = 0; f < 60; f++)
                {
                    var ino = fs.CreateFile(dir, $"file-{f}-with-a-longer-name", s_file, EngineTests.Content(f, f * 700));
                    if (f % 10 == 0)
                    {
                        fs.CreateHardLink(top, $"link-{d}-{f}", ino);
                        fs.SetXattrs(ino, new Dictionary<string, byte[]> { ["user.big"] = EngineTests.Content(d, 600) });
                    }
                }
            }

            fs.CreateSparseFile(top, "fragmented", s_file, 2000L * 8192,
                Enumerable.Range(0, 2000).Select(i => ((long)i * 8192, new byte[] { 1 })).ToList());
            fs.CreateSymlink(top, "slow", new string('s', 300), s_file);
        });
        Ext4Tools.AssertClean(image.Path);

        image.Modify(fs => Assert.True(fs.Remove(Ext4Constants.RootInode, "top")));
        Ext4Tools.AssertClean(image.Path);
        image.Modify(fs =>
        {
            Assert.Equal(freeBlocks, fs.Superblock.FreeBlocksCount);
            Assert.Equal(freeInodes, fs.Superblock.FreeInodesCount);
            Assert.Null(fs.TryLookup("/top"));
        });
    }

    [Theory]
    [MemberData(nameof(EngineTests.FileSystems), MemberType = typeof(EngineTests))]
    public void ReplacesFilesByDirectoriesAndBackAndKeepsLinkCounts(string kind)
    {
        using var image = EngineTests.MakeImage(kind);
        var content = "content"u8.ToArray();
        image.Modify(fs =>
        {
            const uint root = Ext4Constants.RootInode;
            var ino = fs.CreateFile(root, "x", s_file, content);
            fs.CreateHardLink(root, "x-link", ino);
            var y = fs.CreateDirectory(root, "y", s_dir);
            fs.CreateDirectory(y, "sub", s_dir);
            fs.CreateFile(y, "f", s_file, content);
        });
        Ext4Tools.AssertClean(image.Path);

        image.Modify(fs =>
        {
            const uint root = Ext4Constants.RootInode;
            fs.Remove(root, "x");
            var x = fs.CreateDirectory(root, "x", s_dir);
            fs.CreateFile(x, "inner", s_file, content);
            fs.Remove(root, "y");
            fs.CreateFile(root, "y", s_file, content);
        });
        Ext4Tools.AssertClean(image.Path);

        using var mount = Ext4Mount.Mount(image.Path);
        Assert.True(Directory.Exists(mount.PathOf("x")));
        Assert.Equal(content, File.ReadAllBytes(mount.PathOf("x/inner")));
        Assert.Equal(content, File.ReadAllBytes(mount.PathOf("y")));
        Assert.Equal(1UL, PosixStat.LStat(mount.PathOf("x-link")).Links);
        Assert.Equal(2UL, PosixStat.LStat(mount.PathOf("x")).Links);
    }

    [Fact]
    public void ADirectoryOfTwentyThousandEntriesStaysClean()
    {
        using var image = EngineTests.MakeImage("mke2fs:default");
        var names = Enumerable.Range(0, 20_000).Select(i => $"entry-{i:D5}-{new string('n', i % 40)}").ToList();
        image.Modify(fs =>
        {
            var dir = fs.CreateDirectory(Ext4Constants.RootInode, "many", s_dir);
            foreach (var name in names)
            {
                fs.CreateSpecial(dir, name, InodeType.Fifo, 0, 0, s_file);
            }
        });
        Ext4Tools.AssertClean(image.Path);

        image.Modify(fs =>
        {
            var dir = fs.Lookup("/many");
            for (var i = 0; i < names.Count; i += 2)
            {
                Assert.True(fs.Remove(dir, names[i]));
            }
        });
        Ext4Tools.AssertClean(image.Path);

        using var mount = Ext4Mount.Mount(image.Path);
        var listed = Directory.EnumerateFileSystemEntries(mount.PathOf("many")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(names.Where((_, i) => i % 2 == 1).Order(StringComparer.Ordinal), listed);
    }

    [Fact]
    public void ModifyingAnHtreeDirectoryMadeByE2fsckConvertsItToLinear()
    {
        using var image = EngineTests.MakeImage("mke2fs:default");
        var names = Enumerable.Range(0, 3000).Select(i => $"file-{i}").ToList();
        image.Modify(fs =>
        {
            var dir = fs.CreateDirectory(Ext4Constants.RootInode, "indexed", s_dir);
            foreach (var name in names)
            {
                fs.CreateSpecial(dir, name, InodeType.Fifo, 0, 0, s_file);
            }
        });

        // e2fsck -D builds htree indexes for large directories.
        var optimise = Tool.Run("e2fsck", "-fyD", image.Path);
        Assert.True(optimise.ExitCode is 0 or 1, optimise.Output);
        Assert.True((Debugfs.Stat(image.Path, "/indexed").Flags & 0x1000) != 0, "e2fsck -D did not index the directory");

        image.Modify(fs =>
        {
            var dir = fs.Lookup("/indexed");
            Assert.Equal(names.Count, fs.ListDirectory(dir).Count);
            fs.Remove(dir, "file-17");
            fs.CreateFile(dir, "added", s_file, "new"u8);
        });
        Ext4Tools.AssertClean(image.Path);
        Assert.Equal(0u, Debugfs.Stat(image.Path, "/indexed").Flags & 0x1000);

        using var mount = Ext4Mount.Mount(image.Path);
        var expected = names.Where(n => n != "file-17").Append("added").Order(StringComparer.Ordinal);
        var listed = Directory.EnumerateFileSystemEntries(mount.PathOf("indexed")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(expected, listed);
        Assert.Equal("new", File.ReadAllText(mount.PathOf("indexed/added")));
    }
}

/// <summary>The base layer's geometry: allocations that reach uninitialised groups must initialise them correctly.</summary>
public class UninitGroupTests
{
    [Fact]
    public void AllocatingIntoUninitGroupsOfA64GiBBaseStaysClean()
    {
        using var image = EngineTests.MakeImage("mke2fs:overlaybd-base-64g");
        var attributes = new InodeAttributes(0x1A4, Mtime: new Ext4Time(1_650_000_000, 0));
        long freeBefore = 0;
        image.Modify(fs =>
        {
            freeBefore = fs.Superblock.FreeBlocksCount;
            Assert.Contains(Enumerable.Range(0, fs.GroupDescriptors.GroupCount), g => fs.GroupDescriptors.Flags(g).HasFlag(GroupFlags.BlockUninit));

            // 3 GiB of mapped-mode data (nothing written) spans many BLOCK_UNINIT groups.
            var (_, placements) = fs.CreateFileAllocated(Ext4Constants.RootInode, "huge", attributes, 3L << 30);
            Assert.Equal(3L << 30, placements.Sum(p => p.Length));

            // More inodes than one group holds reach INODE_UNINIT groups.
            var dir = fs.CreateDirectory(Ext4Constants.RootInode, "inodes", attributes);
            for (var i = 0; i < 9000; i++)
            {
                fs.CreateSpecial(dir, $"f{i}", InodeType.Fifo, 0, 0, attributes);
            }
        });
        Ext4Tools.AssertClean(image.Path);

        image.Modify(fs =>
        {
            fs.Remove(Ext4Constants.RootInode, "huge");
            fs.Remove(Ext4Constants.RootInode, "inodes");
            Assert.Equal(freeBefore, fs.Superblock.FreeBlocksCount);
        });
        Ext4Tools.AssertClean(image.Path);
    }
}
