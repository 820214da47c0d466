using System.Net;
using CommandLine;
using TurboOci.Frontends.Fuse;
using TurboOci.Frontends.Nbd;
using TurboOci.Interop.Linux;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci device attach --image RAW [--frontend fuse|nbd] [--rw] ...</c>: serves in the foreground until stopped.</summary>
[VerbGroup("device", DeviceCommandSupport.GroupHelp)]
[Verb("attach", HelpText = "Serve a raw disk image (--image) or a config.v1.json layer stack (--config) as a block device, in the foreground until Ctrl-C or SIGTERM; prints the device path or NBD URI when ready.")]
public sealed class DeviceAttachCommand : ICommand
{
    [Option("image", SetName = "image", Required = true, HelpText = "The raw disk image to serve (for example an ext4 image made by mke2fs).")]
    public string? Image { get; set; }

    [Option("config", SetName = "config", Required = true, HelpText = "An overlaybd config.v1.json (as written by 'turbooci index'): serve its layer stack, reading TurboOCI layers lazily from their original blobs.")]
    public string? Config { get; set; }

    [Option("frontend", Default = DeviceFrontend.Fuse, HelpText = "fuse: a file in a FUSE mount plus a loop device (works wherever FUSE and loop do); nbd: an NBD server.")]
    public DeviceFrontend Frontend { get; set; } = DeviceFrontend.Fuse;

    [Option("rw", HelpText = "Serve read-write: writes, flushes and trims reach the image. Read-only by default.")]
    public bool ReadWrite { get; set; }

    [Option("dir", HelpText = "fuse: the directory to mount the FUSE file system on (created if missing). Default: /run/turbooci/fuse/<name>-<pid>.")]
    public string? Directory { get; set; }

    [Option("name", Default = "device", HelpText = "fuse: the name of the device file in the directory; nbd: the export name.")]
    public string Name { get; set; } = "device";

    [Option("no-loop", HelpText = "fuse: serve the file only; do not bind a loop device to it.")]
    public bool NoLoop { get; set; }

    [Option("loop-direct-io", Default = true, HelpText = "fuse: bind the loop device with direct I/O, so it submits requests asynchronously instead of one at a time.")]
    public bool? LoopDirectIo { get; set; } = true;

    [Option("workers", HelpText = "fuse: threads reading /dev/fuse (default: one per core, 2 to 8).")]
    public int? Workers { get; set; }

    [Option("socket", HelpText = "nbd: the Unix socket to listen on. Default: /run/turbooci/nbd/<name>.sock unless --port is given.")]
    public string? Socket { get; set; }

    [Option("port", HelpText = "nbd: also listen on this TCP port of 127.0.0.1 (0 picks a free one).")]
    public int? Port { get; set; }

    [Option("ready-file", HelpText = "When serving, write the device path or URI to this file (for scripts waiting on the device).")]
    public string? ReadyFile { get; set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var stop = DeviceCommandSupport.StopOnSignals(cancellationToken, out var signals);
        using var _ = signals;
        await using var source = DeviceCommandSupport.OpenSource(Image, Config, ReadWrite);
        if (Frontend == DeviceFrontend.Nbd)
        {
            await ServeNbdAsync(source, stop.Token).ConfigureAwait(false);
        }
        else
        {
            await ServeFuseAsync(source, stop.Token).ConfigureAwait(false);
        }

        source.Flush();
        DeviceCommandSupport.ReportBlobReads(source);
        return ExitCodes.Success;
    }

    private async Task ServeFuseAsync(Storage.BlockSource source, CancellationToken stop)
    {
        var directory = Directory ?? Path.Combine("/run/turbooci/fuse", $"{Name}-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(directory);

        // A previous server of this directory may have died and left its mount behind.
        FuseFileMount.CleanupStale(directory);
        var options = new FuseFileMountOptions { FileName = Name, ReadOnly = !ReadWrite };
        if (Workers is { } workers)
        {
            options = options with { Workers = workers };
        }

        using var fuse = FuseFileMount.Mount(directory, source, options);
        LoopDevice? loop = null;
        try
        {
            if (!NoLoop)
            {
                loop = LoopDevice.Attach(fuse.FilePath, readOnly: !ReadWrite, directIo: LoopDirectIo ?? true);
            }

            DeviceCommandSupport.AnnounceReady(loop?.Path ?? fuse.FilePath, ReadyFile);
            await WaitAsync(stop).ConfigureAwait(false);
        }
        finally
        {
            // Filesystems still mounted from the loop device would keep it (and the FUSE mount)
            // busy: they are unmounted lazily, as a crash would leave them, before detaching.
            if (loop is not null)
            {
                FuseFileMount.DetachLoopDevicesUnder(directory);
            }
        }
    }

    private async Task ServeNbdAsync(Storage.BlockSource source, CancellationToken stop)
    {
        var socket = Socket ?? (Port is null ? Path.Combine("/run/turbooci/nbd", Name + ".sock") : null);
        if (socket is not null)
        {
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(socket))!);
        }

        await using var server = NbdServer.Start(
            [new NbdExport(Name, source, ReadOnly: !ReadWrite)],
            new NbdServerOptions
            {
                UnixSocketPath = socket,
                TcpEndPoint = Port is { } port ? new IPEndPoint(IPAddress.Loopback, port) : null,
                Log = line => Console.Error.WriteLine($"turbooci: {line}"),
            });
        DeviceCommandSupport.AnnounceReady(server.UriFor(Name, tcp: socket is null), ReadyFile);
        if (socket is not null && server.TcpEndPoint is not null)
        {
            Console.WriteLine(server.UriFor(Name, tcp: true));
        }

        await WaitAsync(stop).ConfigureAwait(false);
    }

    private static async Task WaitAsync(CancellationToken stop)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // asked to stop: detach cleanly
        }
    }
}
