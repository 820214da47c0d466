using System.Diagnostics;
using System.Net.Sockets;
using System.Reflection;
using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary>
/// A verb that talks to the device daemon (<c>turbooci serve</c>) over its control socket, and starts one in
/// the background when none runs and the verb needs it.
/// </summary>
public abstract class DaemonClientCommand : ICommand
{
    /// <summary>
    /// How long a daemon started in the background has to answer: generous, for a loaded or emulated machine where
    /// the runtime alone takes tens of seconds to start. A daemon that fails says so in its log, which ends the wait.
    /// </summary>
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromMinutes(2);

    [Option("socket", HelpText = "The daemon's control socket; its folder holds the daemon's state, log, FUSE mounts and NBD sockets. Default: $TURBOOCI_SOCKET, else " + DaemonPaths.DefaultSocket + ".")]
    public string? Socket { get; set; }

    public abstract Task<int> RunAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Sends <paramref name="request"/>. With no daemon running, one is started in the background when
    /// <paramref name="startDaemon"/> says so, or when the state file lists devices a dead daemon served (the
    /// new daemon attaches them again first). Failures are printed; the exit code says which kind.
    /// </summary>
    protected async Task<(ControlResponse? Response, int ExitCode)> SendAsync(ControlRequest request, bool startDaemon, CancellationToken cancellationToken)
    {
        var paths = DaemonPaths.For(Socket);
        if (!ControlClient.IsRunning(paths.SocketPath))
        {
            if (!startDaemon && !DeadDaemonLeftDevices(paths))
            {
                return (null, ExitCodes.Success);
            }

            await StartDaemonAsync(paths, cancellationToken).ConfigureAwait(false);
        }

        ControlResponse response;
        try
        {
            response = await ControlClient.SendAsync(paths.SocketPath, request, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot reach the turbooci daemon on {paths.SocketPath}: {e.Message}", e);
        }

        if (response.Ok)
        {
            return (response, ExitCodes.Success);
        }

        Console.Error.WriteLine($"turbooci: {response.Error}");
        return (null, response.ErrorKind switch
        {
            ControlErrorKind.Usage => ExitCodes.Usage,
            ControlErrorKind.BadData => ExitCodes.BadData,
            ControlErrorKind.IoError => ExitCodes.IoError,
            _ => ExitCodes.Failure,
        });
    }

    /// <summary>Whether the state file lists devices (a damaged one may: the daemon sets it aside when it starts).</summary>
    private static bool DeadDaemonLeftDevices(DaemonPaths paths)
    {
        try
        {
            return ControlCodec.LoadState(paths.StateFile).Devices.Count > 0;
        }
        catch (InvalidDataException)
        {
            return true;
        }
    }

    /// <summary>The daemon's socket, for messages.</summary>
    protected string SocketPath => DaemonPaths.For(Socket).SocketPath;

    /// <summary>
    /// Starts <c>turbooci serve</c> in its own session (setsid), detached from this terminal and process, its
    /// output appended to the log file in the daemon's folder, and waits until it answers.
    /// </summary>
    private static async Task StartDaemonAsync(DaemonPaths paths, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(paths.Directory);
        var logStart = File.Exists(paths.LogFile) ? new FileInfo(paths.LogFile).Length : 0;
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("log=$1; shift; exec setsid -f \"$@\" </dev/null >>\"$log\" 2>&1");
        info.ArgumentList.Add("sh");
        info.ArgumentList.Add(paths.LogFile);
        foreach (var word in (string[])[.. OwnCommandLine(), "serve", "--socket", paths.SocketPath])
        {
            info.ArgumentList.Add(word);
        }

        using (var launcher = Process.Start(info) ?? throw new IOException("could not start /bin/sh to launch the daemon"))
        {
            await launcher.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            if (launcher.ExitCode != 0)
            {
                throw new IOException($"could not launch 'turbooci serve' (setsid exited with {launcher.ExitCode})");
            }
        }

        var deadline = DateTime.UtcNow + s_startTimeout;
        while (!ControlClient.IsRunning(paths.SocketPath))
        {
            // Program prints a failed verb as "turbooci: ..." on stderr, which is the log here.
            var failure = NewLogLines(paths.LogFile, logStart).FirstOrDefault(l => l.StartsWith("turbooci: ", StringComparison.Ordinal));
            if (failure is not null || DateTime.UtcNow > deadline)
            {
                var log = string.Join('\n', NewLogLines(paths.LogFile, logStart).TakeLast(5));
                throw new IOException(failure is not null
                    ? $"the turbooci daemon started in the background failed; the end of {paths.LogFile}:\n{log}"
                    : $"the turbooci daemon started in the background did not answer on {paths.SocketPath} within {s_startTimeout.TotalSeconds:0} s; the end of {paths.LogFile}:\n{log}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What the daemon wrote to its log since <paramref name="start"/>.</summary>
    private static IEnumerable<string> NewLogLines(string logFile, long start)
    {
        if (!File.Exists(logFile))
        {
            return [];
        }

        using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Position = Math.Min(start, stream.Length);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>How to run this same turbooci: its apphost, or <c>dotnet turbooci.dll</c>.</summary>
    private static string[] OwnCommandLine()
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which executable runs turbooci");
        return Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? [host, Assembly.GetEntryAssembly()?.Location ?? typeof(DaemonClientCommand).Assembly.Location]
            : [host];
    }

    /// <summary>Prints devices as an aligned table, or says there are none.</summary>
    protected static void PrintTable(IReadOnlyList<DeviceRecord> devices)
    {
        string[] header = ["NAME", "FRONTEND", "MODE", "DEVICE", "MOUNTED ON", "SOURCE"];
        var rows = devices.Select(d => new[]
        {
            d.Name, d.Frontend.Name(), d.ReadWrite ? "rw" : "ro", d.Device, d.MountPoint.Length > 0 ? d.MountPoint : "-", d.Source,
        }).Prepend(header).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))));
        }
    }
}

/// <summary>Options shared by <c>attach</c> and <c>mount</c>: what to serve, how, under which name.</summary>
public abstract class DeviceSourceCommand : DaemonClientCommand
{
    [Option("config", SetName = "config", Required = true, HelpText = "An overlaybd config.v1.json (as 'turbooci index' or overlaybd's snapshotter writes it): serve its layer stack, TurboOCI layers read lazily from their original blobs. Its resultFile, if any, gets 'success' or 'failed:<reason>'.")]
    public string? Config { get; set; }

    [Option("image", SetName = "image", Required = true, HelpText = "Instead of --config: serve a raw disk image file as it is.")]
    public string? Image { get; set; }

    [Option("rw", HelpText = "Read-write: writes, flushes and trims land in the config's upper layer (created empty on the lowers if its index and data files do not exist yet, as overlaybd-create would), or in the --image file. Read-only by default.")]
    public bool ReadWrite { get; set; }

    [Option("name", HelpText = "The device's name in 'turbooci list', its NBD export name and FUSE folder. Default: the config's folder name, made unique.")]
    public string? Name { get; set; }

    public abstract DeviceFrontend Frontend { get; set; }

    /// <summary>The attach request, with paths made absolute (the daemon runs elsewhere).</summary>
    protected ControlRequest AttachRequest(string? mountPoint) => new()
    {
        Op = ControlOps.Attach,
        Config = Config is null ? "" : Path.GetFullPath(Config),
        Image = Image is null ? "" : Path.GetFullPath(Image),
        Frontend = Frontend,
        ReadWrite = ReadWrite,
        Name = Name ?? "",
        MountPoint = mountPoint is null ? "" : Path.GetFullPath(mountPoint),
    };
}
