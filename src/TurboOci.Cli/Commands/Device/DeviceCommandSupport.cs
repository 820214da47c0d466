using System.Runtime.InteropServices;
using TurboOci.Images;
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
    public const string GroupHelp = "Serve disk images and layer stacks as block devices: a FUSE-exported file with a loop device, or an NBD export.";

    /// <summary>
    /// The block source behind a device: a raw image file, or the layer stack of a config.v1.json. The
    /// frontends see only the block source either way. A stack is writable only through its upper layer.
    /// </summary>
    public static BlockSource OpenSource(string? image, string? config, bool writable)
    {
        if (config is not null)
        {
            var stack = ImageStack.Open(ImageConfig.Load(config));
            if (writable && !stack.CanWrite)
            {
                stack.Dispose();
                throw new ArgumentException($"{config} has no writable upper layer: serve it without --rw, or add an upper (index and data files)");
            }

            return stack;
        }

        return writable ? FileBlockSource.OpenReadWrite(image!) : FileBlockSource.OpenRead(image!);
    }

    /// <summary>On stop, says how much of the original layer blobs a stack really read: the point of lazy loading.</summary>
    public static void ReportBlobReads(BlockSource source)
    {
        if (source is ImageStack { TargetBlobs: { Count: > 0 } blobs })
        {
            var read = blobs.Sum(b => b.BytesRead);
            var size = blobs.Sum(b => b.Size);
            Console.Error.WriteLine($"layer blobs: read {read} of {size} bytes ({(size == 0 ? 0 : 100.0 * read / size):0.0}%) in {blobs.Sum(b => b.Reads)} reads from {blobs.Count} blobs");
        }
    }

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
