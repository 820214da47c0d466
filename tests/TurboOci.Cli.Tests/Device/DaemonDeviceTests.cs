using System.Globalization;
using TurboOci.Daemon;
using TurboOci.Testing;
using KernelMounts = TurboOci.Interop.Linux.Mounts;

namespace TurboOci.Cli.Tests.Device;

/// <summary>
/// The device verbs end to end with the real kernel: <c>turbooci mount/umount/attach/detach/list</c> as separate
/// processes talking to a <c>turbooci serve</c> daemon they start in the background; the FUSE frontend with a
/// loop device and ext4 mounted by the kernel; NBD checked by libnbd's nbdinfo and nbdcopy.
/// </summary>
public sealed class DaemonDeviceTests
{
    [Fact]
    public void MountOfTheSyntheticImageShowsTheChangesetModelsTreeAndUmountLeavesNothing()
    {
        using var session = new DaemonSession();
        var (config, expected) = DeviceStacks.IndexSyntheticImage(session);
        var mnt = session.Directory("mnt");

        Assert.False(session.DaemonRunning);
        var device = session.RunChecked("mount", "--config", config, mnt);
        Assert.True(session.DaemonRunning, "mount starts the daemon in the background");
        Assert.StartsWith("/dev/loop", device, StringComparison.Ordinal);
        var mount = KernelMounts.At(mnt);
        Assert.NotNull(mount);
        Assert.Equal(("ext4", device), (mount.FileSystemType, mount.Source));
        Assert.StartsWith("ro,", mount.Options + ",", StringComparison.Ordinal);
        FileTree.AssertSame(expected, FileTree.FromDirectory(mnt, "lost+found"));

        var listed = Assert.Single(session.List());
        Assert.Equal(("synthetic", DeviceFrontend.Fuse, false, device, mnt, config), (listed.Name, listed.Frontend, listed.ReadWrite, listed.Device, listed.MountPoint, listed.Config));
        Assert.Contains($"synthetic  fuse      ro    {device}", session.RunChecked("ps"), StringComparison.Ordinal);

        Assert.Equal($"unmounted {mnt} and detached synthetic ({device})", session.RunChecked("umount", mnt));
        Assert.Null(KernelMounts.At(mnt));
        Assert.Empty(session.List());
        var (mounts, loops) = session.Leftovers();
        Assert.Empty(mounts);
        Assert.Empty(loops);
    }

    [Fact]
    public void ARwMountKeepsCreatesOverwritesAndDeletesAcrossUmountAndRemountAndE2fsckFindsItClean()
    {
        using var session = new DaemonSession();
        var config = DeviceStacks.AddUpper(DeviceStacks.IndexReferenceLayer(session));
        var mnt = session.Directory("mnt");
        Assert.False(File.Exists(config.Upper!.Data));

        // The upper does not exist yet: attach --rw creates it on the lowers, as overlaybd-create would.
        session.RunChecked("mount", "--config", Path.Combine(session.File("stack"), "config.v1.json"), mnt, "--rw");
        Assert.Equal("success", File.ReadAllText(config.ResultFile));
        Assert.True(File.Exists(config.Upper.Data) && File.Exists(config.Upper.Index));
        Assert.StartsWith("rw,", KernelMounts.At(mnt)!.Options + ",", StringComparison.Ordinal);
        var big = Enumerable.Range(0, 3 << 20).Select(i => (byte)(i * 7 + (i >> 12))).ToArray();
        File.WriteAllText(Path.Combine(mnt, "created.txt"), "made through a turbooci rw mount\n");
        File.WriteAllBytes(Path.Combine(mnt, "dir", "big.bin"), big);
        File.WriteAllText(Path.Combine(mnt, "hello.txt"), "overwritten\n");
        File.Delete(Path.Combine(mnt, "run.sh"));
        Tool.RunChecked("sync", "-f", mnt);
        session.RunChecked("umount", mnt);
        Assert.Null(KernelMounts.At(mnt));

        // Remounted by a new daemon (the first one stopped): everything written is there.
        session.StopDaemon();
        session.RunChecked("mount", "--config", Path.Combine(session.File("stack"), "config.v1.json"), mnt, "--rw");
        Assert.Equal("made through a turbooci rw mount\n", File.ReadAllText(Path.Combine(mnt, "created.txt")));
        Assert.Equal(big, File.ReadAllBytes(Path.Combine(mnt, "dir", "big.bin")));
        Assert.Equal("overwritten\n", File.ReadAllText(Path.Combine(mnt, "hello.txt")));
        Assert.False(File.Exists(Path.Combine(mnt, "run.sh")));
        session.RunChecked("umount", mnt);

        // The same stack attached without a mount: e2fsck reads the device and finds nothing to fix.
        var device = session.RunChecked("attach", "--config", Path.Combine(session.File("stack"), "config.v1.json"), "--name", "check");
        var check = E2fsck.Check(device);
        Assert.True(check.Clean, check.ToString());
        Assert.Equal($"detached check ({device})", session.RunChecked("detach", device));
        var (mounts, loops) = session.Leftovers();
        Assert.Empty(mounts);
        Assert.Empty(loops);
    }

    [Fact]
    public void ADaemonKilledWithSigkillIsRestartedByTheNextVerbAndServesItsMountAgain()
    {
        using var session = new DaemonSession();
        var config = DeviceStacks.IndexReferenceLayer(session);
        var mnt = session.Directory("mnt");
        session.RunChecked("mount", "--config", config, mnt, "--name", "ref");
        var hello = File.ReadAllBytes(Path.Combine(mnt, "hello.txt"));
        var oldPid = session.DaemonPid;

        session.KillDaemon();
        Assert.False(session.DaemonRunning);
        Assert.ThrowsAny<IOException>(() => File.ReadAllBytes(Path.Combine(mnt, "dir", "lines.txt"))); // the FUSE connection is gone

        // Any verb finds the state of a dead daemon and starts a new one, which cleans the dead FUSE mount
        // and its loop device, attaches the stack again and mounts it where it was.
        var restored = Assert.Single(session.List());
        Assert.NotEqual(oldPid, session.DaemonPid);
        Assert.Equal(("ref", mnt, false), (restored.Name, restored.MountPoint, restored.ReadWrite));
        Assert.StartsWith("/dev/loop", restored.Device, StringComparison.Ordinal);
        Assert.Single(KernelMounts.Read(), m => m.MountPoint == mnt);
        Assert.Equal(restored.Device, KernelMounts.At(mnt)!.Source);
        Assert.Equal(hello, File.ReadAllBytes(Path.Combine(mnt, "hello.txt")));
        Assert.Equal(Tool.RunChecked("tar", "-xzOf", DeviceStacks.ReferenceLayer, "dir/lines.txt").Stdout, File.ReadAllText(Path.Combine(mnt, "dir", "lines.txt")));
        Assert.Contains("restored ref", session.Log(), StringComparison.Ordinal);

        // detach --all: nothing mounted, no loop device, no FUSE mount left, and nothing to restore.
        Assert.Equal($"detached ref ({restored.Device})", session.RunChecked("detach", "--all"));
        var (mounts, loops) = session.Leftovers();
        Assert.Empty(mounts);
        Assert.Empty(loops);
        Assert.Empty(ControlCodec.LoadState(session.Paths.StateFile).Devices);
    }

    [Fact]
    public void SigtermDetachesEveryDeviceAndTheNextDaemonAttachesThemAgain()
    {
        using var session = new DaemonSession();
        var config = DeviceStacks.IndexReferenceLayer(session);
        var mnt = session.Directory("mnt");
        session.RunChecked("mount", "--config", config, mnt, "--name", "mounted");
        var uri = session.RunChecked("attach", "--config", config, "--frontend", "nbd", "--name", "exported");
        var loop = session.RunChecked("attach", "--config", config, "--name", "plain");
        Assert.Equal($"nbd+unix:///exported?socket={session.Paths.NbdSocket("exported")}", uri);
        Assert.Equal(["mounted", "exported", "plain"], session.List().Select(d => d.Name));

        session.StopDaemon();
        Assert.False(File.Exists(session.Paths.SocketPath));
        Assert.False(File.Exists(session.Paths.NbdSocket("exported")));
        var (mounts, loops) = session.Leftovers();
        Assert.Empty(mounts);
        Assert.Empty(loops);
        Assert.Contains(loop, session.Log(), StringComparison.Ordinal);

        var again = session.List();
        Assert.Equal(["mounted", "exported", "plain"], again.Select(d => d.Name));
        Assert.Equal(uri, again[1].Device);
        Assert.True(File.Exists(Path.Combine(mnt, "hello.txt")));
        Assert.Equal(new FileInfo(Export(session, config)).Length.ToString(CultureInfo.InvariantCulture), Tool.RunChecked("nbdinfo", "--size", uri).Stdout.Trim());
    }

    [Fact]
    public void NbdAttachServesARawImageAndAStackByteForByteToNbdcopy()
    {
        using var session = new DaemonSession();
        var tree = session.Directory("tree");
        File.WriteAllText(Path.Combine(tree, "hello.txt"), "served over NBD\n");
        var image = session.File("disk.img");
        Tool.RunChecked("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, image, "16M");

        var uri = session.RunChecked("attach", "--image", image, "--frontend", "nbd", "--name", "disk");
        Assert.Equal($"nbd+unix:///disk?socket={session.Paths.NbdSocket("disk")}", uri);
        Assert.Equal("16777216", Tool.RunChecked("nbdinfo", "--size", uri).Stdout.Trim());
        Assert.Equal("true", Tool.RunChecked("nbdinfo", "--is", "readonly", uri).ExitCode == 0 ? "true" : "false");
        Tool.RunChecked("nbdcopy", uri, session.File("copy.img"));
        Assert.Equal(File.ReadAllBytes(image), File.ReadAllBytes(session.File("copy.img")));
        session.RunChecked("detach", uri);
        Assert.False(File.Exists(session.Paths.NbdSocket("disk")));

        // A stack: nbdcopy skips the zero extents the server reports, so the sparse 64 GiB disk copies quickly;
        // its first 128 MiB (where this small file system keeps metadata and files) equal 'turbooci export'.
        var config = DeviceStacks.IndexReferenceLayer(session);
        var exported = Export(session, config);
        var stackUri = session.RunChecked("attach", "--config", config, "--frontend", "nbd");
        Assert.Equal("nbd+unix:///stack?socket=" + session.Paths.NbdSocket("stack"), stackUri);
        var served = session.File("served.img");
        Tool.RunChecked("nbdcopy", stackUri, served);
        Assert.Equal(new FileInfo(exported).Length, new FileInfo(served).Length);
        var compare = Tool.Run("cmp", "-n", (128L << 20).ToString(CultureInfo.InvariantCulture), exported, served);
        Assert.True(compare.ExitCode == 0, $"NBD bytes differ from export --config: {compare.Output}");
    }

    [Fact]
    public void FailuresAreClearMessagesWithTheirExitCodesAndTheResultFileSaysFailed()
    {
        using var session = new DaemonSession();
        var configPath = DeviceStacks.IndexReferenceLayer(session);
        var config = DeviceStacks.AddUpper(configPath);

        // A lower that is gone: the daemon answers with the error, the result file records it as overlaybd does.
        File.Move(config.Lowers[1].GzipIndex, session.File("moved.meta"));
        var (code, _, stderr) = session.Run("attach", "--config", configPath);
        Assert.Equal(ExitCodes.IoError, code);
        Assert.Contains("gzip.meta", stderr, StringComparison.Ordinal);
        Assert.StartsWith("failed:", File.ReadAllText(config.ResultFile), StringComparison.Ordinal);
        Assert.Contains("gzip.meta", File.ReadAllText(config.ResultFile), StringComparison.Ordinal);
        File.Move(session.File("moved.meta"), config.Lowers[1].GzipIndex);

        // Read-write without an upper layer; an nbd device mounted; names and devices that do not exist.
        var lowersOnly = session.File("lowers.json");
        File.WriteAllBytes(lowersOnly, (config with { Upper = null, ResultFile = "" }).ToJson());
        (code, _, stderr) = session.Run("attach", "--config", lowersOnly, "--rw");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("no writable upper layer", stderr, StringComparison.Ordinal);
        (code, _, stderr) = session.Run("mount", "--config", lowersOnly, session.Directory("mnt"), "--frontend", "nbd");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("not a block device", stderr, StringComparison.Ordinal);
        (code, _, stderr) = session.Run("detach", "no-such-device");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("no device no-such-device is attached", stderr, StringComparison.Ordinal);
        (code, _, stderr) = session.Run("attach", "--config", lowersOnly, "--name", "../escape");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("device name", stderr, StringComparison.Ordinal);

        // One writer per upper: a second device of the same rw stack is refused, read-only or not.
        var device = session.RunChecked("attach", "--config", configPath, "--rw", "--name", "writer");
        (code, _, stderr) = session.Run("attach", "--config", configPath, "--name", "reader");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("already attached read-write as writer", stderr, StringComparison.Ordinal);
        Assert.Equal("success", File.ReadAllText(config.ResultFile));
        (code, _, stderr) = session.Run("umount", session.Directory("not-mounted"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("nothing is mounted on", stderr, StringComparison.Ordinal);
        Assert.Equal(device, Assert.Single(session.List()).Device);

        (code, _, stderr) = CliRunner.Run("attach", "--config", configPath, "--image", "/x.img");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("config", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ADamagedStateFileIsSetAsideAndTheDaemonStartsEmpty()
    {
        using var session = new DaemonSession();
        Directory.CreateDirectory(session.Paths.Directory);
        File.WriteAllText(session.Paths.StateFile, "{\"devices\": [{\"name\": ");
        var config = DeviceStacks.IndexReferenceLayer(session);
        var device = session.RunChecked("attach", "--config", config);
        Assert.Equal(device, Assert.Single(session.List()).Device);
        Assert.Equal("{\"devices\": [{\"name\": ", File.ReadAllText(session.Paths.StateFile + ".damaged"));
        Assert.Contains("is damaged", session.Log(), StringComparison.Ordinal);
    }

    [Fact]
    public void ADaemonThatCannotStartIsReportedAtOnceWithTheEndOfItsLog()
    {
        using var session = new DaemonSession();
        Directory.CreateDirectory(session.Paths.LockFile); // a folder where the daemon's lock file must go
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, _, stderr) = session.Run("attach", "--image", session.File("any.img"));
        Assert.Equal(ExitCodes.IoError, code);
        Assert.Contains("the turbooci daemon started in the background failed", stderr, StringComparison.Ordinal);
        Assert.Contains("serve.lock", stderr, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"took {clock.Elapsed}: the failure must end the wait, not the timeout");
        Assert.False(session.DaemonRunning);
    }

    /// <summary>The stack exported to a raw disk by 'turbooci export', for comparisons.</summary>
    private static string Export(DaemonSession session, string config)
    {
        var image = session.File($"export-{Guid.NewGuid():N}.img");
        var (code, _, stderr) = CliRunner.Run("export", image, "--config", config);
        Assert.True(code == 0, stderr);
        return image;
    }
}
