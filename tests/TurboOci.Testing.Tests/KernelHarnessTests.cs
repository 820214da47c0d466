using System.Security.Cryptography;
using System.Text;
using TurboOci.Testing.Tar;

namespace TurboOci.Testing.Tests;

/// <summary>
/// The loop/mount/e2fsck/debugfs harness against the real kernel and e2fsprogs: a file system written
/// through a real ext4 mount must read back the same through debugfs, and nothing may be left attached.
/// </summary>
public sealed class KernelHarnessTests
{
    [Fact]
    public void Files_written_through_a_read_write_mount_are_seen_by_debugfs_and_e2fsck_is_clean()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 64L << 20);
        var payload = RandomNumberGenerator.GetBytes(300_000);
        var device = "";
        var mountPoint = "";

        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            device = mount.Device;
            mountPoint = mount.MountPoint;
            Assert.Contains(mountPoint, Mounts.All());
            Directory.CreateDirectory(mount.PathOf("dir/sub dir"));
            File.WriteAllBytes(mount.PathOf("dir/sub dir/random.bin"), payload);
            File.WriteAllText(mount.PathOf("dir/ünïcødé €.txt"), "hello");
            File.CreateSymbolicLink(mount.PathOf("dir/link"), "random.bin");
            File.WriteAllText(mount.PathOf("dir/q\"uote"), "quoted");
            Tool.RunChecked("chown", "1234:5678", mount.PathOf("dir/ünïcødé €.txt"));
            Tool.RunChecked("touch", "-d", "@1700000000", mount.PathOf("dir/ünïcødé €.txt"));
        }

        Assert.DoesNotContain(mountPoint, Mounts.All());
        Assert.False(Directory.Exists(mountPoint));
        Assert.Empty(LoopDevice.DevicesBackedBy(image));

        var fsck = E2fsck.Check(image);
        Assert.True(fsck.Clean, fsck.ToString());

        var entries = Debugfs.List(image, "/dir");
        Assert.Equal(
            new[] { ".", "..", "link", "q\"uote", "sub dir", "ünïcødé €.txt" },
            entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        var text = entries.Single(e => e.Name == "ünïcødé €.txt");
        Assert.True(text.IsRegularFile);
        Assert.Equal(5UL, text.Size);
        Assert.Equal((1234u, 5678u), (text.Uid, text.Gid));
        Assert.True(entries.Single(e => e.Name == "link").IsSymlink);
        Assert.True(entries.Single(e => e.Name == "sub dir").IsDirectory);

        Assert.Equal(payload, Debugfs.Cat(image, "/dir/sub dir/random.bin"));
        Assert.Equal("quoted"u8.ToArray(), Debugfs.Cat(image, "/dir/q\"uote"));

        var stat = Debugfs.Stat(image, "/dir/ünïcødé €.txt");
        Assert.Equal("regular", stat.Type);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), stat.Mtime);
        Assert.Equal((1234u, 5678u, 5UL, 1u), (stat.Uid, stat.Gid, stat.Size, stat.Links));
        Assert.Equal("random.bin", Debugfs.Stat(image, "/dir/link").FastLinkTarget);
        var big = Debugfs.Stat(image, "/dir/sub dir/random.bin");
        Assert.Equal(300_000UL, big.Size);
        Assert.NotEqual("", big.BlockMap);
        Assert.StartsWith("/dev/loop", device);
    }

    [Fact]
    public void Stat_reports_devices_modes_xattrs_and_exact_xattr_values()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        var capability = Convert.FromHexString("0100000200200000000000000000000000000000");
        var longValue = Encoding.ASCII.GetBytes(new string('v', 200));
        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            Tool.RunChecked("mknod", "-m", "0620", mount.PathOf("tty"), "c", "4", "1");
            Tool.RunChecked("mknod", "-m", "0600", mount.PathOf("nvme"), "b", "259", "70000");
            Tool.RunChecked("mkfifo", mount.PathOf("fifo"));
            Tool.RunChecked("chmod", "1755", mount.PathOf("fifo"));
            File.WriteAllText(mount.PathOf("capable"), "x");
            Xattrs.Set(mount.PathOf("capable"), "security.capability", capability);
            Xattrs.Set(mount.PathOf("capable"), "user.long", longValue);
            Assert.Equal(capability, Xattrs.Get(mount.PathOf("capable"))["security.capability"]);
        }

        Assert.True(E2fsck.Check(image).Clean);
        var tty = Debugfs.Stat(image, "/tty");
        Assert.Equal(("character special", 0x190u, (4u, 1u)), (tty.Type, tty.Mode, tty.Device!.Value));
        Assert.Equal((259u, 70000u), Debugfs.Stat(image, "/nvme").Device!.Value);
        var fifo = Debugfs.Stat(image, "/fifo");
        Assert.Equal(("FIFO", Convert.ToUInt32("1755", 8)), (fifo.Type, fifo.Mode));

        var capable = Debugfs.Stat(image, "/capable");
        Assert.Equal(20, capable.Xattrs["security.capability"]);
        Assert.Equal(200, capable.Xattrs["user.long"]);
        Assert.Equal(capability, Debugfs.GetXattr(image, "/capable", "security.capability"));
        Assert.Equal(longValue, Debugfs.GetXattr(image, "/capable", "user.long"));
    }

    [Fact]
    public void A_layer_extracted_onto_ext4_reads_back_as_the_layer_model_through_the_kernel_and_debugfs()
    {
        // The path the ext4 indexer tests take: mount an image, compare its tree with the layer model.
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 64L << 20, "-I 256 -b 4096");
        var layer = SyntheticLayers.Base();
        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            GnuTar.Extract(layer, mount.MountPoint);
        }

        Assert.True(E2fsck.Check(image).Clean);
        using (var mount = Ext4Mount.Mount(image))
        {
            FileTree.AssertSame(LayerModel.Merge([layer]), FileTree.FromDirectory(mount.MountPoint, "lost+found"));
        }

        // ext4 keeps a symlink target under 60 bytes inside the inode, a longer one in a block.
        Assert.Equal("/usr/bin/tool", Debugfs.Stat(image, "/bin/sh").FastLinkTarget);
        var longLink = Debugfs.Stat(image, "/usr/share/long-symlink");
        Assert.Null(longLink.FastLinkTarget);
        Assert.Equal((ulong)SyntheticLayers.LongSymlinkTarget.Length, longLink.Size);
        Assert.Equal(Encoding.UTF8.GetBytes(SyntheticLayers.LongSymlinkTarget), Debugfs.Cat(image, "/usr/share/long-symlink"));

        var tool = Debugfs.Stat(image, "/usr/bin/tool");
        Assert.Equal(2u, tool.Links);
        Assert.Equal(tool.Inode, Debugfs.Stat(image, "/usr/bin/tool-hardlink").Inode);
        Assert.Equal(SyntheticLayers.NetRawCapability, Debugfs.GetXattr(image, "/usr/bin/ping", "security.capability"));
        Assert.Equal((511u, 300_000u), Debugfs.Stat(image, "/dev/big-numbers").Device!.Value);
        Assert.Contains("naïve €.txt", Debugfs.List(image, "/opt/ünïcødé").Select(e => e.Name));
    }

    [Fact]
    public void Read_only_mount_shows_the_files_and_refuses_writes()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            File.WriteAllText(mount.PathOf("a.txt"), "abc");
        }

        var before = SHA256.HashData(File.ReadAllBytes(image));
        using (var mount = Ext4Mount.Mount(image))
        {
            Assert.Equal("abc", File.ReadAllText(mount.PathOf("a.txt")));
            var error = Assert.ThrowsAny<IOException>(() => File.WriteAllText(mount.PathOf("b.txt"), "no"));
            Assert.Contains("Read-only", error.Message, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(image)));
    }

    [Fact]
    public void Dispose_unmounts_and_detaches_even_when_the_test_body_throws()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        string mountPoint = "";
        string device = "";

        void FailingTestBody()
        {
            using var mount = Ext4Mount.Mount(image, readOnly: false);
            mountPoint = mount.MountPoint;
            device = mount.Device;
            File.WriteAllText(mount.PathOf("f"), "x");
            Assert.Contains(mountPoint, Mounts.All());
            Assert.Contains(device, LoopDevice.DevicesBackedBy(image));
            throw new InvalidOperationException("test body failed");
        }

        var thrown = Assert.Throws<InvalidOperationException>(FailingTestBody);

        Assert.Equal("test body failed", thrown.Message);
        Assert.DoesNotContain(mountPoint, Mounts.All());
        Assert.Empty(LoopDevice.DevicesBackedBy(image));
        Assert.False(Directory.Exists(mountPoint));
        Assert.True(E2fsck.Check(image).Clean);
    }

    [Fact]
    public void Dispose_waits_out_a_busy_mount_held_by_an_open_file()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        var mount = Ext4Mount.Mount(image, readOnly: false);
        var held = File.Open(mount.PathOf("held"), FileMode.Create);
        var release = Task.Run(async () =>
        {
            await Task.Delay(300);
            await held.DisposeAsync();
        });

        mount.Dispose(); // umount fails with EBUSY until the handle closes, then succeeds
        release.Wait();
        Assert.False(Mounts.IsMountPoint(mount.MountPoint));
        Assert.Empty(LoopDevice.DevicesBackedBy(image));
        Assert.Contains("held", Debugfs.List(image, "/").Select(e => e.Name));
    }

    [Fact]
    public void E2fsck_reports_a_damaged_image_and_debugfs_errors_throw()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            Directory.CreateDirectory(mount.PathOf("d"));
        }

        var inode = Debugfs.Stat(image, "/d").Inode;
        Debugfs.RunWritable(image, $"sif <{inode}> links_count 7");

        var fsck = E2fsck.Check(image);
        Assert.False(fsck.Clean);
        Assert.Equal(4, fsck.ExitCode);
        Assert.Contains($"Inode {inode} ref count is 7, should be 2.", fsck.Output, StringComparison.Ordinal);

        var missing = Assert.Throws<ToolFailedException>(() => Debugfs.Stat(image, "/no-such-file"));
        Assert.Contains("not found", missing.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Stat_parses_small_128_byte_inodes_without_nanoseconds()
    {
        using var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20, "-I 128 -O ^metadata_csum");
        using (var mount = Ext4Mount.Mount(image, readOnly: false))
        {
            File.WriteAllText(mount.PathOf("old"), "x");
            Tool.RunChecked("touch", "-m", "-d", "@1234567890", mount.PathOf("old"));
        }

        var stat = Debugfs.Stat(image, "/old");
        Assert.DoesNotContain("Size of extra inode fields", stat.Raw);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1234567890), stat.Mtime);
        Assert.Equal((1UL, 1u), (stat.Size, stat.Links));
    }

    [Fact]
    public void TempDir_refuses_to_delete_itself_while_something_is_mounted_inside()
    {
        var temp = new TempDir();
        var image = temp.File("fs.img");
        Mkfs.Ext4(image, 16L << 20);
        var mountPoint = Directory.CreateDirectory(temp.File("mount point with spaces")).FullName;
        using (var loop = LoopDevice.Attach(image))
        {
            Tool.RunChecked("mount", "-o", "ro", loop.Device, mountPoint);
            try
            {
                Assert.Equal([mountPoint], Mounts.Under(temp.Path));
                var refused = Assert.Throws<InvalidOperationException>(temp.Dispose);
                Assert.Contains("still mounted", refused.Message);
                Assert.True(File.Exists(image));
            }
            finally
            {
                Tool.RunChecked("umount", mountPoint);
            }
        }

        temp.Dispose();
        Assert.False(Directory.Exists(temp.Path));
    }

    [Fact]
    public void Tool_reports_exit_codes_stdin_timeouts_and_missing_programs()
    {
        var echo = Tool.Run("sh", ["-c", "cat; echo err >&2; exit 3"], stdin: "in put");
        Assert.Equal(new ToolResult(3, "in put", "err\n"), echo);
        Assert.Throws<ToolFailedException>(() => Tool.RunChecked("false"));
        var losetup = Tool.Which("losetup");
        Assert.True(losetup.EndsWith("sbin/losetup", StringComparison.Ordinal) && File.Exists(losetup), losetup);
        var missing = Assert.Throws<InvalidOperationException>(() => Tool.Which("no-such-tool-turbooci"));
        Assert.Equal("no-such-tool-turbooci not installed: run tools/setup", missing.Message);
        Assert.Throws<TimeoutException>(() => Tool.Run("sleep", ["30"], timeout: TimeSpan.FromMilliseconds(200)));
        Assert.Equal("/tmp\n", Tool.RunChecked("pwd", [], workingDirectory: "/tmp").Stdout);
    }
}
