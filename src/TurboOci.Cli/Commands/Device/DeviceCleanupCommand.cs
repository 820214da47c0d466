using CommandLine;
using TurboOci.Frontends.Fuse;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci device cleanup DIR...</c>: removes what a killed FUSE-file server left behind.</summary>
[VerbGroup("device", "Low-level device chores; attaching and detaching are the top-level verbs attach, detach, mount, umount and list.")]
[Verb("cleanup", HelpText = "After a FUSE-file server died: lazily unmount filesystems on loop devices over its file, detach those loop devices and unmount the dead FUSE mount. Live mounts are left alone.")]
public sealed class DeviceCleanupCommand : ICommand
{
    [Value(0, MetaName = "DIR", Required = true, HelpText = "Directories where FUSE-file devices were mounted (a FUSE device's folder under the daemon's folder, or any directory a FUSE-file server used).")]
    public IEnumerable<string> Directories { get; set; } = [];

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        foreach (var directory in Directories)
        {
            Console.WriteLine(FuseFileMount.CleanupStale(directory)
                ? $"{directory}: removed a dead FUSE mount and its loop devices"
                : $"{directory}: nothing stale (not a FUSE mount, or its server is alive)");
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
