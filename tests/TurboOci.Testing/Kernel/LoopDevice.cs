namespace TurboOci.Testing;

/// <summary>
/// A file attached to a kernel loop device with losetup; detached on Dispose (retried while the device is
/// busy, e.g. while udev still probes it right after a mount).
/// </summary>
public sealed class LoopDevice : IDisposable
{
    private bool _detached;

    private LoopDevice(string device, string imagePath)
    {
        Device = device;
        ImagePath = imagePath;
    }

    /// <summary>The device node, e.g. /dev/loop3.</summary>
    public string Device { get; }

    /// <summary>The attached file.</summary>
    public string ImagePath { get; }

    /// <summary>Attaches <paramref name="imagePath"/> to the first free loop device.</summary>
    public static LoopDevice Attach(string imagePath, bool readOnly = true)
    {
        var fullPath = Path.GetFullPath(imagePath);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException("no image to attach", fullPath);
        }

        List<string> args = ["--find", "--show"];
        if (readOnly)
        {
            args.Add("--read-only");
        }

        args.Add(fullPath);

        // Parallel test processes race for the same free device; losetup retries internally, but under
        // load it can still lose the race, so try a few times before failing.
        ToolResult? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            last = Tool.Run("losetup", args);
            if (last.ExitCode == 0)
            {
                var device = last.Stdout.Trim();
                var loop = new LoopDevice(device, fullPath);
                LeakGuard.Register(loop);
                return loop;
            }

            Thread.Sleep(100 * (attempt + 1));
        }

        throw new ToolFailedException("losetup", args, last!);
    }

    /// <summary>Detaches the device; safe to call twice.</summary>
    public void Dispose()
    {
        if (_detached)
        {
            return;
        }

        ToolResult? last = null;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            last = Tool.Run("losetup", "--detach", Device);
            if (last.ExitCode == 0 || !IsAttachedTo(Device, ImagePath))
            {
                _detached = true;
                LeakGuard.Unregister(this);
                return;
            }

            Thread.Sleep(100);
        }

        throw new ToolFailedException("losetup", ["--detach", Device], last!);
    }

    /// <summary>Loop devices currently backed by <paramref name="imagePath"/> (from `losetup -j`).</summary>
    public static IReadOnlyList<string> DevicesBackedBy(string imagePath)
    {
        var result = Tool.RunChecked("losetup", "--noheadings", "--output", "NAME", "--associated", Path.GetFullPath(imagePath));
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static bool IsAttachedTo(string device, string imagePath) => DevicesBackedBy(imagePath).Contains(device);
}
