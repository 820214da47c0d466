using System.Diagnostics;
using System.Globalization;
using TurboOci.Daemon;
using TurboOci.Frontends.Fuse;
using TurboOci.Testing;
using KernelLoopDevice = TurboOci.Interop.Linux.LoopDevice;
using KernelMounts = TurboOci.Interop.Linux.Mounts;

namespace TurboOci.Cli.Tests.Device;

/// <summary>
/// A private turbooci daemon for one test: its control socket (and so its state, FUSE mounts and NBD sockets)
/// in a fresh folder, every verb run as a real <c>turbooci</c> process with <c>--socket</c>. The daemon is
/// started in the background by the first verb that needs it, as for a user. Dispose detaches everything,
/// stops the daemon, and clears what a killed daemon may have left.
/// </summary>
public sealed class DaemonSession : IDisposable
{
    private readonly TempDir _folder = new("turbooci-daemon-");

    public DaemonSession()
    {
        Paths = new DaemonPaths(Path.Combine(_folder.Path, "daemon", "turbooci.sock"));
    }

    public DaemonPaths Paths { get; }

    /// <summary>A scratch path inside the session's folder.</summary>
    public string File(string name) => _folder.File(name);

    /// <summary>A new empty directory inside the session's folder.</summary>
    public string Directory(string name) => System.IO.Directory.CreateDirectory(_folder.File(name)).FullName;

    /// <summary>Runs <c>turbooci VERB ARGS... --socket S</c>.</summary>
    public (int Code, string Stdout, string Stderr) Run(params string[] args) => CliRunner.Run([.. args, "--socket", Paths.SocketPath]);

    /// <summary>Runs a verb that must succeed; returns its standard output, trimmed.</summary>
    public string RunChecked(params string[] args)
    {
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, $"turbooci {string.Join(' ', args)} exited with {code}: {stderr}\n{Log()}");
        return stdout.Trim();
    }

    /// <summary>The devices as <c>turbooci list --json</c> prints them.</summary>
    public IReadOnlyList<DeviceRecord> List()
    {
        var json = RunChecked("list", "--json");
        return ControlCodec.DecodeResponse(System.Text.Encoding.UTF8.GetBytes(json.ReplaceLineEndings(" "))).Devices;
    }

    /// <summary>The process id of the running daemon, from its lock file.</summary>
    public int DaemonPid => int.Parse(System.IO.File.ReadAllText(Paths.PidFile).Trim(), CultureInfo.InvariantCulture);

    public bool DaemonRunning => ControlClient.IsRunning(Paths.SocketPath);

    /// <summary>The daemon's log (its output when started in the background).</summary>
    public string Log() => System.IO.File.Exists(Paths.LogFile) ? System.IO.File.ReadAllText(Paths.LogFile) : "(no daemon log)";

    /// <summary>SIGKILL: the daemon gets no chance to clean anything.</summary>
    public void KillDaemon()
    {
        using var process = Process.GetProcessById(DaemonPid);
        process.Kill();
        Assert.True(process.WaitForExit(10_000), "the daemon did not die on SIGKILL");
    }

    /// <summary>SIGTERM, as a service manager stops it; waits for the exit.</summary>
    public void StopDaemon()
    {
        using var process = Process.GetProcessById(DaemonPid);
        Tool.RunChecked("kill", "-TERM", process.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(process.WaitForExit(30_000), "the daemon did not stop on SIGTERM");
    }

    /// <summary>Mounts under the session's folder and loop devices whose backing file lies in it.</summary>
    public (IReadOnlyList<string> Mounts, IReadOnlyList<string> Loops) Leftovers()
    {
        // Detached loop devices are released by the kernel shortly after the last user goes.
        IReadOnlyList<string> loops = [];
        for (var i = 0; i < 100; i++)
        {
            loops = KernelLoopDevice.FindByBackingFile(_folder.Path).Select(l => l.Path).ToList();
            if (loops.Count == 0)
            {
                break;
            }

            Thread.Sleep(50);
        }

        var mounts = KernelMounts.Read().Where(m => m.MountPoint.StartsWith(_folder.Path + "/", StringComparison.Ordinal)).Select(m => m.MountPoint).ToList();
        return (mounts, loops);
    }

    public void Dispose()
    {
        try
        {
            if (DaemonRunning || ControlCodec.LoadState(Paths.StateFile).Devices.Count > 0)
            {
                Run("detach", "--all");
            }

            if (DaemonRunning)
            {
                StopDaemon();
            }
        }
        catch (Exception) when (DaemonRunning)
        {
            KillDaemon(); // never leave a daemon of a test running
            throw;
        }
        finally
        {
            // A test that failed half-way may have killed the daemon: clear its dead mounts before deleting.
            var fuse = Path.Combine(Paths.Directory, "fuse");
            foreach (var dir in System.IO.Directory.Exists(fuse) ? System.IO.Directory.GetDirectories(fuse) : [])
            {
                FuseFileMount.CleanupStale(dir);
            }

            _folder.Dispose();
        }
    }
}
