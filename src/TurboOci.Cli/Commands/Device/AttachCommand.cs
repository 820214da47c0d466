using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci attach --config C [--frontend F] [--rw] [--name N]</c>.</summary>
[Verb("attach", HelpText = "Serve a config.v1.json layer stack (or a raw --image) as a block device through the daemon, and print the device path (fuse, tcmu, ublk) or NBD URI (nbd). The device stays served after this command returns, until 'turbooci detach'.")]
public sealed class AttachCommand : DeviceSourceCommand
{
    [Option("frontend", Default = DeviceFrontend.Fuse, HelpText = "fuse: a loop device on a file of our FUSE mount (works wherever FUSE and loop do); nbd: an NBD export on a Unix socket, printed as nbd+unix:///NAME?socket=PATH; tcmu: a SCSI disk through target_core_user (overlaybd's way); ublk: a ublk block device.")]
    public override DeviceFrontend Frontend { get; set; } = DeviceFrontend.Fuse;

    public override async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var (response, code) = await SendAsync(AttachRequest(mountPoint: null), startDaemon: true, cancellationToken).ConfigureAwait(false);
        if (response is not null)
        {
            Console.WriteLine(response.Devices[0].Device);
        }

        return code;
    }
}
