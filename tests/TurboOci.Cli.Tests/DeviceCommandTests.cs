using System.Diagnostics;
using System.Globalization;
using TurboOci.Frontends.Fuse;
using TurboOci.Testing;
using KernelMounts = TurboOci.Interop.Linux.Mounts;

namespace TurboOci.Cli.Tests;

/// <summary>
/// <c>turbooci device attach</c> and <c>cleanup</c> as separate processes, stopped politely
/// (SIGTERM) and killed (SIGKILL) while the kernel has a filesystem mounted from the device.
/// </summary>
public sealed class DeviceCommandTests
{
    [Fact]
    public void FuseAttachSurvivesAKillOfTheServerThroughCleanup()
    {
        using var temp = new TempDir();
        var image = MakeImage(temp);
        var fuseDir = temp.File("fuse");
        var ext4Dir = Directory.CreateDirectory(temp.File("ext4")).FullName;
        using var server = Attach(temp, "--image", image, "--dir", fuseDir);
        try
        {
            Assert.StartsWith("/dev/loop", server.Device, StringComparison.Ordinal);
            Tool.RunChecked("mount", "-t", "ext4", "-o", "ro,noload", server.Device, ext4Dir);
            Assert.Equal("served by a process that is about to die\n", File.ReadAllText(Path.Combine(ext4Dir, "hello.txt")));

            server.Process.Kill(); // SIGKILL: no chance to clean anything
            server.Process.WaitForExit();
            Assert.ThrowsAny<IOException>(() => Directory.GetFileSystemEntries(fuseDir)); // ENOTCONN

            var (code, stdout, stderr) = CliRunner.Run("device", "cleanup", fuseDir);
            Assert.True(code == 0, stderr);
            Assert.Contains("removed a dead FUSE mount", stdout, StringComparison.Ordinal);
            Assert.Null(KernelMounts.At(fuseDir));
            Assert.Null(KernelMounts.At(ext4Dir));
            var loopNumber = int.Parse(server.Device["/dev/loop".Length..], CultureInfo.InvariantCulture);
            for (var i = 0; i < 100 && TurboOci.Interop.Linux.LoopDevice.BackingFile(loopNumber) is not null; i++)
            {
                Thread.Sleep(50);
            }

            Assert.Null(TurboOci.Interop.Linux.LoopDevice.BackingFile(loopNumber));
        }
        finally
        {
            FuseFileMount.CleanupStale(fuseDir);
        }
    }

    [Fact]
    public void FuseAttachDetachesEverythingOnSigterm()
    {
        using var temp = new TempDir();
        var image = MakeImage(temp);
        var fuseDir = temp.File("fuse");
        using var server = Attach(temp, "--image", image, "--dir", fuseDir, "--rw");
        var ext4Dir = Directory.CreateDirectory(temp.File("ext4")).FullName;
        Tool.RunChecked("mount", "-t", "ext4", server.Device, ext4Dir);
        File.WriteAllText(Path.Combine(ext4Dir, "new.txt"), "written through the CLI's device\n");
        Tool.RunChecked("umount", ext4Dir);

        Assert.Equal(0, server.Stop());
        Assert.Null(KernelMounts.At(fuseDir));
        Assert.Contains("written through the CLI's device", Tool.RunChecked("debugfs", "-R", "cat /new.txt", image).Stdout, StringComparison.Ordinal);
        Assert.True(E2fsck.Check(image).Clean);
    }

    [Fact]
    public void NbdAttachServesTheImageToNbdinfoAndNbdcopy()
    {
        using var temp = new TempDir();
        var image = MakeImage(temp);
        var socket = temp.File("disk.sock");
        using var server = Attach(temp, "--image", image, "--frontend", "nbd", "--socket", socket, "--name", "disk");
        Assert.Equal($"nbd+unix:///disk?socket={socket}", server.Device);
        Assert.Equal(new FileInfo(image).Length.ToString(CultureInfo.InvariantCulture), Tool.RunChecked("nbdinfo", "--size", server.Device).Stdout.Trim());
        Tool.RunChecked("nbdcopy", server.Device, temp.File("copy.img"));
        Assert.Equal(File.ReadAllBytes(image), File.ReadAllBytes(temp.File("copy.img")));

        Assert.Equal(0, server.Stop());
        Assert.False(File.Exists(socket));
    }

    private static string MakeImage(TempDir temp)
    {
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        File.WriteAllText(Path.Combine(tree, "hello.txt"), "served by a process that is about to die\n");
        var image = temp.File("disk.img");
        Tool.RunChecked("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, image, "16M");
        return image;
    }

    private static string ReferenceLayer => RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz");

    /// <summary>Indexes overlaybd's reference layer on the built-in base and returns the stack's config.</summary>
    private static string IndexReferenceLayer(TempDir temp)
    {
        var dir = temp.File("stack");
        var (code, _, stderr) = CliRunner.Run("index", ReferenceLayer, "--output", dir);
        Assert.True(code == 0, stderr);
        return Path.Combine(dir, "config.v1.json");
    }

    [Fact]
    public void FuseAttachOfAConfigServesTheTurboOciStackAndReadsTheBlobLazily()
    {
        using var temp = new TempDir();
        var config = IndexReferenceLayer(temp);
        var ext4Dir = Directory.CreateDirectory(temp.File("ext4")).FullName;

        // Mount and read one small file: only the blocks it needs come from the original blob.
        using (var server = Attach(temp, "--config", config, "--dir", temp.File("fuse1")))
        {
            Tool.RunChecked("mount", "-t", "ext4", "-o", "ro,noload", server.Device, ext4Dir);
            Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Path.Combine(ext4Dir, "run.sh")));
            Tool.RunChecked("umount", ext4Dir);
            Assert.Equal(0, server.Stop());
            var report = server.Process.StandardError.ReadToEnd();
            var read = long.Parse(System.Text.RegularExpressions.Regex.Match(report, @"layer blobs: read (\d+) of 307572 bytes").Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.InRange(read, 1, 307572 / 2);
        }

        // The whole tree, through the same path, is what GNU tar extracts.
        using (var server = Attach(temp, "--config", config, "--dir", temp.File("fuse2")))
        {
            Tool.RunChecked("mount", "-t", "ext4", "-o", "ro,noload", server.Device, ext4Dir);
            try
            {
                var expected = Directory.CreateDirectory(temp.File("expected")).FullName;
                Tool.RunChecked("tar", "-xzf", ReferenceLayer, "-C", expected, "--numeric-owner", "-p");
                FileTree.AssertSame(FileTree.FromDirectory(expected), FileTree.FromDirectory(ext4Dir, "lost+found"));
            }
            finally
            {
                Tool.RunChecked("umount", ext4Dir);
            }

            Assert.Equal(0, server.Stop());
        }
    }

    [Fact]
    public void NbdAttachOfAConfigServesTheSameBytesAsExport()
    {
        using var temp = new TempDir();
        var config = IndexReferenceLayer(temp);
        var image = temp.File("export.img");
        var (code, _, stderr) = CliRunner.Run("export", image, "--config", config);
        Assert.True(code == 0, stderr);
        var socket = temp.File("stack.sock");
        using var server = Attach(temp, "--config", config, "--frontend", "nbd", "--socket", socket, "--name", "stack");
        Assert.Equal(new FileInfo(image).Length.ToString(CultureInfo.InvariantCulture), Tool.RunChecked("nbdinfo", "--size", server.Device).Stdout.Trim());
        // nbdcopy skips the zero extents the server reports (base:allocation), so copying the sparse 64 GiB
        // disk is quick; compare the first 128 MiB, where this small file system keeps its metadata and files.
        var served = temp.File("served.img");
        Tool.RunChecked("nbdcopy", server.Device, served);
        Assert.Equal(new FileInfo(image).Length, new FileInfo(served).Length);
        var compare = Tool.Run("cmp", "-n", (128L << 20).ToString(CultureInfo.InvariantCulture), image, served);
        Assert.True(compare.ExitCode == 0, $"NBD bytes differ from export --config: {compare.Stdout}{compare.Stderr}");
    }

    [Fact]
    public void AttachRefusesAnImageAndAConfigTogether()
    {
        var (code, _, stderr) = CliRunner.Run("device", "attach", "--image", "/x.img", "--config", "/x.json");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("config", stderr, StringComparison.Ordinal);
    }

    private static AttachedDevice Attach(TempDir temp, params string[] args)
    {
        var ready = temp.File($"ready-{Guid.NewGuid():N}");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "turbooci.dll"), "device", "attach", "--ready-file", ready, .. args])
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        for (var i = 0; i < 300 && !File.Exists(ready) && !process.HasExited; i++)
        {
            Thread.Sleep(50);
        }

        if (!File.Exists(ready))
        {
            process.Kill();
            throw new InvalidOperationException($"turbooci device attach did not get ready: {process.StandardError.ReadToEnd()}");
        }

        return new AttachedDevice(process, File.ReadAllText(ready).Trim());
    }

    private sealed record AttachedDevice(Process Process, string Device) : IDisposable
    {
        /// <summary>SIGTERM, as a service manager stops it; returns the exit code.</summary>
        public int Stop()
        {
            Tool.RunChecked("kill", "-TERM", Process.Id.ToString(CultureInfo.InvariantCulture));
            Assert.True(Process.WaitForExit(30_000), "turbooci did not stop on SIGTERM");
            return Process.ExitCode;
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit();
            }

            Process.Dispose();
        }
    }
}
