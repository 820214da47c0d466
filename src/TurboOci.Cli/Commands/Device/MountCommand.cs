using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci mount --config C DIR [--frontend F] [--rw]</c>.</summary>
[Verb("mount", HelpText = "Attach a config.v1.json layer stack (or a raw --image) through the daemon and mount its ext4 on DIR: read-only (with noload) unless --rw. The daemon remembers which device backs DIR, for 'turbooci umount DIR'. Prints the device path.")]
public sealed class MountCommand : DeviceSourceCommand
{
    [Value(0, MetaName = "DIR", Required = true, HelpText = "An existing directory to mount the image's file system on.")]
    public string MountPoint { get; set; } = "";

    [Option("frontend", Default = DeviceFrontend.Fuse, HelpText = "How the block device is made: fuse (a loop device on our FUSE-exported file), tcmu or ublk. nbd gives no local block device, so it cannot be mounted here.")]
    public override DeviceFrontend Frontend { get; set; } = DeviceFrontend.Fuse;

    public override async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var (response, code) = await SendAsync(AttachRequest(MountPoint), startDaemon: true, cancellationToken).ConfigureAwait(false);
        if (response is not null)
        {
            Console.WriteLine(response.Devices[0].Device);
        }

        return code;
    }
}
