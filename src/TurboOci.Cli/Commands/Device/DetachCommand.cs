using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci detach DEVICE|URI|NAME...</c> or <c>turbooci detach --all</c>.</summary>
[Verb("detach", HelpText = "Stop serving devices: each named by its device path, NBD URI, name or mount point, or --all. A mounted file system is unmounted first (refused while busy, except with --all, which unmounts lazily). Writable upper layers are flushed.")]
public sealed class DetachCommand : DaemonClientCommand
{
    [Value(0, MetaName = "DEVICE", HelpText = "Devices to detach: /dev/loopN, nbd+unix:///NAME?socket=PATH, the name 'turbooci list' shows, or a mount point.")]
    public IEnumerable<string> Targets { get; set; } = [];

    [Option("all", HelpText = "Detach every device of the daemon and forget them (a restarted daemon will not attach them again).")]
    public bool All { get; set; }

    public override async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var targets = Targets.ToList();
        if (All == (targets.Count > 0))
        {
            throw new ArgumentException("name the devices to detach, or give --all");
        }

        if (All)
        {
            var (response, code) = await SendAsync(new ControlRequest { Op = ControlOps.DetachAll }, startDaemon: false, cancellationToken).ConfigureAwait(false);
            foreach (var device in response?.Devices ?? [])
            {
                Console.WriteLine($"detached {device.Name} ({device.Device})");
            }

            return code;
        }

        var exitCode = ExitCodes.Success;
        foreach (var target in targets)
        {
            var (response, code) = await SendAsync(new ControlRequest { Op = ControlOps.Detach, Target = target }, startDaemon: false, cancellationToken).ConfigureAwait(false);
            if (response is null && code == ExitCodes.Success)
            {
                Console.Error.WriteLine($"turbooci: no turbooci daemon runs on {SocketPath}, so {target} is not attached");
                return ExitCodes.Usage;
            }

            if (response is not null)
            {
                Console.WriteLine($"detached {response.Devices[0].Name} ({response.Devices[0].Device})");
            }

            exitCode = exitCode == ExitCodes.Success ? code : exitCode;
        }

        return exitCode;
    }
}
