using TurboOci.Frontends.Fuse;
using TurboOci.Frontends.Nbd;
using TurboOci.Frontends.Tcmu;
using TurboOci.Frontends.Ublk;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Daemon;

/// <summary>A block source being served to the kernel or to clients; disposing stops serving it.</summary>
internal interface IServedFrontend : IAsyncDisposable
{
    /// <summary>What clients use: a block device path, or an NBD URI.</summary>
    string Device { get; }

    /// <summary>Whether <see cref="Device"/> is a block device the kernel can mount.</summary>
    bool IsBlockDevice { get; }
}

/// <summary>The source as a file in a FUSE mount of the daemon's folder, with a direct-I/O loop device on it.</summary>
internal sealed class FuseLoopFrontend : IServedFrontend
{
    private readonly FuseFileMount _fuse;

    private FuseLoopFrontend(FuseFileMount fuse, LoopDevice loop)
    {
        _fuse = fuse;
        Device = loop.Path;
    }

    public string Device { get; }

    public bool IsBlockDevice => true;

    public static FuseLoopFrontend Start(string directory, BlockSource source, bool readOnly)
    {
        Directory.CreateDirectory(directory);

        // A daemon killed while serving this device left its dead mount (and the loop device on it) here.
        FuseFileMount.CleanupStale(directory);
        var fuse = FuseFileMount.Mount(directory, source, new FuseFileMountOptions { ReadOnly = readOnly });
        try
        {
            // Direct I/O: the loop driver submits requests asynchronously, and nothing is cached twice.
            return new FuseLoopFrontend(fuse, LoopDevice.Attach(fuse.FilePath, readOnly, directIo: true));
        }
        catch
        {
            fuse.Dispose();
            throw;
        }
    }

    public ValueTask DisposeAsync()
    {
        FuseFileMount.DetachLoopDevicesUnder(_fuse.MountPoint);
        _fuse.Dispose();
        try
        {
            Directory.Delete(_fuse.MountPoint);
        }
        catch (IOException)
        {
            // still held by a lazily unmounted user: the empty folder is harmless and reused on the next attach
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>The source as the one export of an NBD server on its own Unix socket.</summary>
internal sealed class NbdFrontend : IServedFrontend
{
    private readonly NbdServer _server;

    private NbdFrontend(NbdServer server, string uri)
    {
        _server = server;
        Device = uri;
    }

    public string Device { get; }

    public bool IsBlockDevice => false;

    public static NbdFrontend Start(string socketPath, string name, BlockSource source, bool readOnly, Action<string> log)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        var server = NbdServer.Start(
            [new NbdExport(name, source, ReadOnly: readOnly)],
            new NbdServerOptions { UnixSocketPath = socketPath, Log = line => log($"{name}: {line}") });
        return new NbdFrontend(server, server.UriFor(name));
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}

/// <summary>
/// The source as a SCSI disk through target_core_user and tcm_loop. The configfs objects are named after the
/// device and the daemon's folder, so that a daemon restarted after a crash adopts its own dead handler's disk
/// (I/O resumes, mounts stay) and two daemons never take each other's.
/// </summary>
internal sealed class TcmuFrontend(TcmuDevice device) : IServedFrontend
{
    public string Device => device.DevicePath;

    public bool IsBlockDevice => true;

    public static TcmuFrontend Start(string name, BlockSource source, bool readOnly, Action<string> log) =>
        new(TcmuDevice.Attach(source, new TcmuDeviceOptions
        {
            Name = name,
            ReadOnly = readOnly,
            // A daemon restarted after a crash must re-adopt the disk before the kernel fails held commands; its
            // start (runtime, state restore) can take tens of seconds on a slow or emulated machine.
            CommandTimeoutSeconds = 180,
            Log = line => log($"{name}: {line}"),
        }));

    public ValueTask DisposeAsync() => device.DisposeAsync();
}

/// <summary>The source as a ublk block device, /dev/ublkbN.</summary>
internal sealed class UblkFrontend(UblkDevice device) : IServedFrontend
{
    public string Device => device.DevicePath;

    public bool IsBlockDevice => true;

    public static UblkFrontend Start(BlockSource source, bool readOnly) =>
        new(UblkDevice.Start(source, new UblkDeviceOptions { ReadOnly = readOnly }));

    public ValueTask DisposeAsync() => device.DisposeAsync();
}
