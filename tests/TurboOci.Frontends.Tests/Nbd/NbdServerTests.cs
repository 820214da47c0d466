using System.Diagnostics;
using System.Net;
using System.Text.Json;
using TurboOci.Frontends.Nbd;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Nbd;

/// <summary>The NBD server against libnbd's real clients: nbdinfo, nbdcopy and nbdfuse.</summary>
public sealed class NbdServerTests
{
    [Fact]
    public async Task NbdinfoReportsSizeAndFlagsOfReadOnlyAndWritableExports()
    {
        using var temp = new TempDir();
        var readOnly = new GuardedBlockSource(new MemoryBlockSource(new byte[3 * 1024 * 1024 + 512]));
        var writable = new GuardedBlockSource(new MemoryBlockSource(new byte[1 << 20], writable: true));
        await using var server = NbdServer.Start(
            [new NbdExport("base", readOnly, "the read-only base"), new NbdExport("upper", writable)],
            new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock"), TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });

        var ro = Export(Tool.RunChecked("nbdinfo", "--json", server.UriFor("base")).Stdout);
        Assert.Equal(readOnly.Size, ro.GetProperty("export-size").GetInt64());
        Assert.True(ro.GetProperty("is_read_only").GetBoolean());
        Assert.True(ro.GetProperty("can_flush").GetBoolean());
        Assert.True(ro.GetProperty("can_fua").GetBoolean());
        Assert.True(ro.GetProperty("can_multi_conn").GetBoolean());
        Assert.False(ro.GetProperty("can_trim").GetBoolean());
        Assert.False(ro.GetProperty("can_zero").GetBoolean());
        Assert.Equal("the read-only base", ro.GetProperty("description").GetString());

        var rw = Export(Tool.RunChecked("nbdinfo", "--json", server.UriFor("upper", tcp: true)).Stdout);
        Assert.Equal(1 << 20, rw.GetProperty("export-size").GetInt64());
        Assert.False(rw.GetProperty("is_read_only").GetBoolean());
        Assert.True(rw.GetProperty("can_trim").GetBoolean());
        Assert.True(rw.GetProperty("can_zero").GetBoolean());
        Assert.Equal(32 << 20, rw.GetProperty("block_size_maximum").GetInt64());

        // NBD_OPT_LIST, and an unknown name refused with NBD_REP_ERR_UNKNOWN.
        var list = Tool.RunChecked("nbdinfo", "--list", "--json", server.UriFor("")).Stdout;
        var names = JsonDocument.Parse(list).RootElement.GetProperty("exports").EnumerateArray().Select(e => e.GetProperty("export-name").GetString()).ToList();
        Assert.Equal(["base", "upper"], names);
        var unknown = Tool.Run("nbdinfo", server.UriFor("nope"));
        Assert.NotEqual(0, unknown.ExitCode);

        Assert.Empty(readOnly.Violations);
        Assert.Empty(writable.Violations);
        Assert.Equal(0, server.ProtocolErrors);
    }

    [Fact]
    public async Task NbdcopyOfTheExportEqualsTheSourceOverUnixAndTcp()
    {
        using var temp = new TempDir();
        var bytes = new byte[24 << 20];
        new Random(11).NextBytes(bytes);
        bytes.AsSpan(4 << 20, 4 << 20).Clear(); // a zero run, which copying must reproduce too
        var source = new GuardedBlockSource(new MemoryBlockSource(bytes));
        await using var server = NbdServer.Start([new NbdExport("disk", source)],
            new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock"), TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0) });

        foreach (var (uri, name) in new[] { (server.UriFor("disk"), "unix.img"), (server.UriFor("disk", tcp: true), "tcp.img") })
        {
            // Several connections and many requests in flight on each.
            Tool.RunChecked("nbdcopy", "--connections=4", "--requests=32", "--request-size=262144", uri, temp.File(name));
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes)), Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(temp.File(name)))));
        }

        Assert.Empty(source.Violations);
    }

    [Fact]
    public async Task NbdcopyIntoAWritableExportWritesEveryByte()
    {
        using var temp = new TempDir();
        var input = new byte[8 << 20];
        new Random(12).NextBytes(input);
        input.AsSpan(1 << 20, 2 << 20).Clear();
        File.WriteAllBytes(temp.File("in.img"), input);
        var target = new byte[input.Length];
        target.AsSpan().Fill(0xEE); // zeroed ranges must come out as zeros, whichever way nbdcopy writes them
        var source = new GuardedBlockSource(new MemoryBlockSource(target, writable: true));
        await using var server = NbdServer.Start([new NbdExport("disk", source)], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock") });

        Tool.RunChecked("nbdcopy", "--flush", temp.File("in.img"), server.UriFor("disk"));

        Assert.True(input.AsSpan().SequenceEqual(target), "the export differs from what was copied in");
        Assert.True(source.Flushes > 0);
        Assert.Empty(source.Violations);
    }

    [Fact]
    public async Task NbdfuseAndALoopDeviceMountTheExportedExt4()
    {
        using var temp = new TempDir();
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        TestImages.WriteTree(tree, seed: 21);
        var image = temp.File("disk.img");
        TestImages.MakeExt4(tree, image, 48);
        var fuseDir = Directory.CreateDirectory(temp.File("nbdfuse")).FullName;

        using var file = FileBlockSource.OpenReadWrite(image);
        var source = new GuardedBlockSource(file);
        await using var server = NbdServer.Start([new NbdExport("disk", source)], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock") });
        using (var nbdfuse = NbdfuseProcess.Start(fuseDir, server.UriFor("disk"), temp.File("nbdfuse.pid")))
        {
            using (var ext4 = Ext4Mount.Mount(nbdfuse.FilePath, readOnly: false))
            {
                Assert.Equal(TestImages.Describe(tree), TestImages.Describe(ext4.MountPoint, "lost+found"));
                File.WriteAllText(ext4.PathOf("etc/written-over-nbd"), "hello through nbdfuse\n");
                File.Delete(ext4.PathOf("usr/lib/lib3.so"));
                Tool.RunChecked("sync", "-f", ext4.MountPoint);
            }
        }

        Assert.Empty(source.Violations);
        Assert.True(source.Writes > 0);
        Assert.True(source.Flushes > 0);
        await server.DisposeAsync();
        var check = E2fsck.Check(image);
        Assert.True(check.Clean, check.ToString());
        Assert.Contains("hello through nbdfuse", Tool.RunChecked("debugfs", "-R", "cat /etc/written-over-nbd", image).Stdout, StringComparison.Ordinal);
    }

    private static JsonElement Export(string json) => JsonDocument.Parse(json).RootElement.GetProperty("exports")[0];

    /// <summary>nbdfuse serving one URI as MOUNTPOINT/nbd, in the foreground as a child process; unmounted on dispose.</summary>
    private sealed class NbdfuseProcess : IDisposable
    {
        private readonly Process _process;
        private readonly string _mountPoint;

        private NbdfuseProcess(Process process, string mountPoint)
        {
            _process = process;
            _mountPoint = mountPoint;
        }

        public string FilePath => Path.Combine(_mountPoint, "nbd");

        public static NbdfuseProcess Start(string mountPoint, string uri, string pidFile)
        {
            var start = new ProcessStartInfo(Tool.Which("nbdfuse")) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { "-P", pidFile, mountPoint, uri })
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start)!;
            var fuse = new NbdfuseProcess(process, mountPoint);
            for (var i = 0; i < 200 && !File.Exists(pidFile) && !process.HasExited; i++)
            {
                Thread.Sleep(25);
            }

            if (!File.Exists(pidFile))
            {
                fuse.Dispose();
                throw new InvalidOperationException($"nbdfuse did not start: {process.StandardError.ReadToEnd()}");
            }

            return fuse;
        }

        public void Dispose()
        {
            if (TurboOci.Testing.Mounts.IsMountPoint(_mountPoint))
            {
                Tool.RunChecked("fusermount3", "-u", _mountPoint);
            }

            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
                _process.WaitForExit();
            }

            _process.Dispose();
        }
    }
}
