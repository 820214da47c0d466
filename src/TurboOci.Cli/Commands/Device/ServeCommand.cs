using System.Globalization;
using System.Runtime.InteropServices;
using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci serve [--socket PATH]</c>: the long-running device daemon.</summary>
[Verb("serve", HelpText = "Run the device daemon in the foreground: it serves the devices that attach and mount ask for, over a control socket (JSON lines), re-attaches the devices its state file lists after a restart or crash, and detaches them all on SIGTERM or Ctrl-C. The other verbs start it in the background when none runs.")]
public sealed class ServeCommand : ICommand
{
    [Option("socket", HelpText = "The control socket to listen on; its folder holds the state file (devices.json), the lock (serve.pid), the log of a background start (serve.log), FUSE mounts and NBD sockets. Default: $TURBOOCI_SOCKET, else " + DaemonPaths.DefaultSocket + ".")]
    public string? Socket { get; set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });

        await DaemonHost.RunAsync(DaemonPaths.For(Socket), Log, stop.Token).ConfigureAwait(false);
        Log("stopped");
        return ExitCodes.Success;
    }

    private static void Log(string line) =>
        Console.Error.WriteLine($"{DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} turbooci serve[{Environment.ProcessId}]: {line}");
}
