using System.Runtime.InteropServices;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.Device;

/// <summary>Which kernel-facing protocol serves a device.</summary>
public enum DeviceFrontend
{
    /// <summary>A file in a FUSE mount (our own /dev/fuse server), usually with a loop device on it.</summary>
    Fuse,

    /// <summary>An NBD server on a Unix socket and/or loopback TCP.</summary>
    Nbd,
}

internal static class DeviceCommandSupport
{
    public const string GroupHelp = "Serve disk images as block devices: a FUSE-exported file with a loop device, or an NBD export.";

    /// <summary>
    /// The block source behind a device. Today a raw image file; a config.v1.json layer stack plugs
    /// in here (a --config option beside --image) without the frontends changing.
    /// </summary>
    public static BlockSource OpenSource(string image, bool writable) =>
        writable ? FileBlockSource.OpenReadWrite(image) : FileBlockSource.OpenRead(image);

    /// <summary>Cancelled by Ctrl-C (through Program's token) or by SIGTERM, as a service manager stops us.</summary>
    public static CancellationTokenSource StopOnSignals(CancellationToken cancellationToken, out IDisposable registration)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        registration = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        return stop;
    }

    /// <summary>Prints what clients use (a device path or URI) and, for scripts, writes it to a file once serving.</summary>
    public static void AnnounceReady(string device, string? readyFile)
    {
        Console.WriteLine(device);
        if (readyFile is not null)
        {
            var temporary = readyFile + ".tmp";
            File.WriteAllText(temporary, device + "\n");
            File.Move(temporary, readyFile, overwrite: true); // appears whole or not at all
        }
    }
}
