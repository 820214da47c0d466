using TurboOci.Frontends.Fuse;
using TurboOci.Interop.Fuse;
using TurboOci.Interop.Linux;
using TurboOci.Storage;
using TurboOci.Testing;
using KernelMounts = TurboOci.Interop.Linux.Mounts;
using LoopDevice = TurboOci.Interop.Linux.LoopDevice;

namespace TurboOci.Frontends.Tests.Fuse;

/// <summary>
/// The FUSE-file frontend against the real kernel: /dev/fuse, a loop device on the served file,
/// and ext4 mounted from it.
/// </summary>
public sealed class FuseFileMountTests
{
    [Fact]
    public void ServesARawExt4ImageThatTheKernelMountsWithTheSameTree()
    {
        using var temp = new TempDir();
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        TestImages.WriteTree(tree, seed: 1);
        var image = temp.File("disk.img");
        TestImages.MakeExt4(tree, image, 64);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;

        using var source = FileBlockSource.OpenRead(image);
        using (var fuse = FuseFileMount.Mount(fuseDir, source, new FuseFileMountOptions { FileName = "disk" }))
        {
            // The directory holds exactly the one file, with the image's size and bytes.
            Assert.Equal(["disk"], Directory.GetFileSystemEntries(fuseDir).Select(Path.GetFileName));
            Assert.Equal(new FileInfo(image).Length, new FileInfo(fuse.FilePath).Length);
            Assert.Equal(TestImages.Sha256(image), TestImages.Sha256(fuse.FilePath));
            Assert.Equal("fuse.turbooci", KernelMounts.At(fuseDir)!.FileSystemType);
            var refused = Assert.Throws<IOException>(() => File.OpenWrite(fuse.FilePath).Dispose());
            Assert.Contains("Read-only file system", refused.Message, StringComparison.Ordinal); // EROFS

            using (var ext4 = Ext4Mount.Mount(fuse.FilePath, readOnly: true))
            {
                Assert.Equal(TestImages.Describe(tree), TestImages.Describe(ext4.MountPoint, "lost+found"));
            }

            Assert.True(fuse.FileSystem.RequestCount(FuseOpcode.Read) > 0);
            Assert.True(fuse.FileSystem.RequestCount(FuseOpcode.ReadDirPlus) + fuse.FileSystem.RequestCount(FuseOpcode.ReadDir) > 0);
            Assert.Null(fuse.WorkerFault);
            Assert.Null(fuse.FileSystem.LastSourceError);
        }

        Assert.Null(KernelMounts.At(fuseDir));
    }

    [Fact]
    public void ParallelReadersThroughSeveralWorkersSeeTheSourceBytes()
    {
        using var temp = new TempDir();
        var random = new Random(7);
        var bytes = new byte[16 << 20];
        random.NextBytes(bytes);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        using var source = new MemoryBlockSource(bytes);
        using var fuse = FuseFileMount.Mount(fuseDir, source, new FuseFileMountOptions { Workers = 4 });

        using var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, task =>
        {
            var local = new Random(task);
            var buffer = new byte[256 << 10];
            for (var i = 0; i < 40; i++)
            {
                var length = local.Next(1, buffer.Length);
                var offset = local.NextInt64(0, bytes.Length - length + 1);
                var read = RandomAccess.Read(handle, buffer.AsSpan(0, length), offset);
                Assert.Equal(length, read);
                Assert.True(buffer.AsSpan(0, length).SequenceEqual(bytes.AsSpan((int)offset, length)), $"bytes differ at {offset}+{length}");
            }
        });

        // At the end: a short read, then nothing.
        var tail = new byte[100];
        Assert.Equal(40, RandomAccess.Read(handle, tail, bytes.Length - 40));
        Assert.Equal(0, RandomAccess.Read(handle, tail, bytes.Length));
        Assert.Null(fuse.WorkerFault);
    }

    [Fact]
    public void ReadWriteMountKeepsWritesAcrossRemountAndStaysClean()
    {
        using var temp = new TempDir();
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        TestImages.WriteTree(tree, seed: 2);
        var image = temp.File("disk.img");
        TestImages.MakeExt4(tree, image, 64);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        var payload = new byte[1 << 20];
        new Random(3).NextBytes(payload);

        using (var source = FileBlockSource.OpenReadWrite(image))
        using (var fuse = FuseFileMount.Mount(fuseDir, source))
        {
            Assert.Equal(source.Size, new FileInfo(fuse.FilePath).Length);
            using (var ext4 = Ext4Mount.Mount(fuse.FilePath, readOnly: false, options: "discard"))
            {
                File.WriteAllBytes(ext4.PathOf("new-payload.bin"), payload);
                Directory.CreateDirectory(ext4.PathOf("created/dir"));
                File.WriteAllText(ext4.PathOf("created/dir/note.txt"), "written through FUSE and loop\n");
                File.WriteAllText(ext4.PathOf("etc/hostname"), "overwritten\n");
                File.Delete(ext4.PathOf("usr/lib/deep/er/big.bin"));
                Tool.RunChecked("sync", "-f", ext4.MountPoint);
                Tool.RunChecked("fstrim", ext4.MountPoint);
            }

            // Loop turns REQ_OP_FLUSH into fsync, and fstrim's discards into FALLOC_FL_PUNCH_HOLE.
            Assert.True(fuse.FileSystem.RequestCount(FuseOpcode.Write) > 0);
            Assert.True(fuse.FileSystem.RequestCount(FuseOpcode.Fsync) > 0);
            Assert.True(fuse.FileSystem.RequestCount(FuseOpcode.Fallocate) > 0);
            Assert.Null(fuse.FileSystem.LastSourceError);
        }

        var check = E2fsck.Check(image);
        Assert.True(check.Clean, check.ToString());

        using (var source = FileBlockSource.OpenRead(image))
        using (var fuse = FuseFileMount.Mount(fuseDir, source))
        using (var ext4 = Ext4Mount.Mount(fuse.FilePath, readOnly: true))
        {
            Assert.Equal(payload, File.ReadAllBytes(ext4.PathOf("new-payload.bin")));
            Assert.Equal("written through FUSE and loop\n", File.ReadAllText(ext4.PathOf("created/dir/note.txt")));
            Assert.Equal("overwritten\n", File.ReadAllText(ext4.PathOf("etc/hostname")));
            Assert.False(File.Exists(ext4.PathOf("usr/lib/deep/er/big.bin")));
            Assert.True(File.Exists(ext4.PathOf("usr/lib/lib0.so")));
        }
    }

    [Fact]
    public void CleanupStaleRemovesWhatADeadServerLeftBehind()
    {
        using var temp = new TempDir();
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        TestImages.WriteTree(tree, seed: 4);
        var image = temp.File("disk.img");
        TestImages.MakeExt4(tree, image, 32);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        var ext4Dir = Directory.CreateDirectory(temp.File("ext4")).FullName;

        using var source = FileBlockSource.OpenRead(image);
        var fuse = FuseFileMount.Mount(fuseDir, source);
        var loop = LoopDevice.Attach(fuse.FilePath, readOnly: true);
        try
        {
        KernelMounts.Mount(loop.Path, ext4Dir, "ext4", MountFlags.ReadOnly, "noload");
        Assert.Equal("turbooci\n", File.ReadAllText(Path.Combine(ext4Dir, "etc", "hostname")));

        // A live mount is not stale.
        Assert.False(FuseFileMount.CleanupStale(fuseDir));

        fuse.Abandon();
        var dead = Assert.ThrowsAny<IOException>(() => Directory.GetFileSystemEntries(fuseDir));
        Assert.Contains("not connected", dead.Message, StringComparison.OrdinalIgnoreCase);

        Assert.True(FuseFileMount.CleanupStale(fuseDir));
        Assert.Null(KernelMounts.At(fuseDir));
        Assert.Null(KernelMounts.At(ext4Dir));
        WaitUntil(() => LoopDevice.BackingFile(loop.Number) is null, $"{loop} still bound");
        Assert.False(FuseFileMount.CleanupStale(fuseDir));
        }
        finally
        {
            // Whatever failed above, leave no mount or loop device behind.
            fuse.Abandon();
            FuseFileMount.CleanupStale(fuseDir);
        }
    }

    private static void WaitUntil(Func<bool> condition, string message)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            Thread.Sleep(50);
        }

        Assert.True(condition(), message);
    }
}
