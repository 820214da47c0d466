using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci umount DIR</c>.</summary>
[Verb("umount", HelpText = "Unmount a file system that 'turbooci mount' mounted on DIR, then detach its device (flushing a writable upper layer). Refused while the mount is busy.")]
public sealed class UmountCommand : DaemonClientCommand
{
    [Value(0, MetaName = "DIR", Required = true, HelpText = "The directory given to 'turbooci mount'.")]
    public string MountPoint { get; set; } = "";

    public override async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var request = new ControlRequest { Op = ControlOps.Unmount, Target = Path.GetFullPath(MountPoint) };
        var (response, code) = await SendAsync(request, startDaemon: false, cancellationToken).ConfigureAwait(false);
        if (response is null && code == ExitCodes.Success)
        {
            Console.Error.WriteLine($"turbooci: no turbooci daemon runs on {SocketPath}, so nothing of it is mounted on {request.Target}");
            return ExitCodes.Usage;
        }

        if (response is not null)
        {
            Console.WriteLine($"unmounted {request.Target} and detached {response.Devices[0].Name} ({response.Devices[0].Device})");
        }

        return code;
    }
}
