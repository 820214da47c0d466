using System.Diagnostics;
using TurboOci.Frontends.Tcmu;
using TurboOci.Images;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>tcmu-serve CONFIG NAME</c>: a handler process on its own (what the recovery check kills): attaches the stack
/// read-only, prints <c>device=/dev/sdX</c> and <c>adopted=true|false</c>, serves until its stdin closes, detaches.
/// <c>tcmu-recovery CONFIG FILE SHA256</c>: overlaybd's headline reliability feature. A handler child serves the
/// stack, the ext4 is mounted, a separate reader process loops over a file with O_DIRECT reads and sha256sum; the
/// handler is killed with SIGKILL in the middle of that loop and a new handler process adopts the configfs
/// objects. The reader must finish with every hash right, and the kernel log must show no I/O error.
/// </summary>
public static class TcmuRecoveryCheck
{
    private const string DeviceName = "turbooci-recovery";
    private const int ReaderIterations = 60;

    public static async Task ServeAsync(string[] args, CheckReport report)
    {
        using var stack = ImageStack.Open(ImageConfig.Load(args[0]));
        await using var device = TcmuDevice.Attach(stack, new TcmuDeviceOptions { Name = args[1], Log = Console.Error.WriteLine });
        Console.WriteLine($"device={device.DevicePath}");
        Console.WriteLine($"adopted={device.Adopted.ToString().ToLowerInvariant()}");
        Console.Out.Flush();
        while (await Console.In.ReadLineAsync() is not null)
        {
        }

        report.Check("tcmu-serve-clean", device.Fault is null, $"{device.Completed} commands answered, {device.CheckConditions} CHECK CONDITION");
    }

    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (args.Length != 3)
        {
            report.Fail("tcmu-usage", "tcmu-recovery CONFIG FILE SHA256");
            return;
        }

        var (configPath, file, sha256) = (args[0], args[1], args[2]);
        var dmesgBefore = GuestProcess.Run("dmesg").Output.Split('\n').Length;
        var first = StartHandler(configPath);
        var (device, adopted, firstOutput) = await ReadAttachAsync(first);
        if (!report.Check("tcmu-recovery-attach", device is not null && adopted == false, $"first handler pid {first.Id}: {firstOutput}"))
        {
            first.Kill();
            return;
        }

        var mountPoint = Directory.CreateTempSubdirectory("turbooci-tcmu-recovery-").FullName;
        Process? second = null;
        try
        {
            if (!GuestProcess.RunChecked(report, "tcmu-recovery-mount", "mount", "-t", "ext4", "-o", "ro", device!, mountPoint))
            {
                return;
            }

            var target = Path.Combine(mountPoint, file);
            var reader = Process.Start(new ProcessStartInfo("bash", ["-c",
                $"for i in $(seq 1 {ReaderIterations}); do dd if=\"$1\" bs=64k iflag=direct status=none | sha256sum | cut -d' ' -f1 || exit 9; done", "reader", target])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var hashes = new List<string>();
            var readerDone = Task.Run(async () =>
            {
                while (await reader.StandardOutput.ReadLineAsync() is { } line)
                {
                    lock (hashes)
                    {
                        hashes.Add(line.Trim());
                    }
                }
            });
            var readerErrors = reader.StandardError.ReadToEndAsync();

            // Kill the handler while the loop runs: after a few passes, with reads in flight or about to be.
            var clock = Stopwatch.StartNew();
            while (Count(hashes) < 3 && clock.Elapsed < TimeSpan.FromMinutes(2) && !reader.HasExited)
            {
                await Task.Delay(10);
            }

            var before = Count(hashes);
            first.Kill();
            await first.WaitForExitAsync();
            report.Check("tcmu-recovery-killed", before >= 3 && !reader.HasExited, $"handler SIGKILLed after {before} of {ReaderIterations} reader passes; the reader is still running");
            await Task.Delay(1000); // reads pile up in the ring with nobody serving it

            second = StartHandler(configPath);
            var (device2, adopted2, secondOutput) = await ReadAttachAsync(second);
            report.Check("tcmu-recovery-adopt", device2 == device && adopted2 == true, $"second handler pid {second.Id}: {secondOutput}; reader at {Count(hashes)} passes");

            if (!reader.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                reader.Kill();
            }

            await readerDone;
            var wrong = hashes.Where(h => h != sha256).ToList();
            report.Check("tcmu-recovery-reader", reader.ExitCode == 0 && hashes.Count == ReaderIterations && wrong.Count == 0,
                $"reader exit {reader.ExitCode}, {hashes.Count} passes, {wrong.Count} wrong hashes, stderr: {Truncate(await readerErrors)}");
            var errors = GuestProcess.Run("dmesg").Output.Split('\n').Skip(dmesgBefore - 1)
                .Where(l => l.Contains("I/O error", StringComparison.OrdinalIgnoreCase) || l.Contains("EXT4-fs error", StringComparison.Ordinal) || l.Contains("critical medium", StringComparison.Ordinal))
                .ToList();
            report.Check("tcmu-recovery-no-io-errors", errors.Count == 0, $"kernel log: {string.Join(" | ", errors.Take(10))}");
            GuestProcess.RunChecked(report, "tcmu-recovery-umount", "umount", mountPoint);
        }
        finally
        {
            if (!first.HasExited)
            {
                first.Kill();
            }

            if (second is not null)
            {
                second.StandardInput.Close();
                var exited = second.WaitForExit(TimeSpan.FromMinutes(2));
                var output = await second.StandardOutput.ReadToEndAsync();
                report.Check("tcmu-recovery-detach", exited && second.ExitCode == 0 && !TcmuChecks.ConfigFsHas(DeviceName),
                    $"second handler exited {(exited ? second.ExitCode : "no")}: {output.Trim()}");
            }

            Directory.Delete(mountPoint);
        }
    }

    private static string Truncate(string text) => text.Length > 400 ? text[..400].Trim() + " ..." : text.Trim();

    private static int Count(List<string> hashes)
    {
        lock (hashes)
        {
            return hashes.Count;
        }
    }

    private static Process StartHandler(string configPath)
    {
        var agent = typeof(TcmuRecoveryCheck).Assembly.Location;
        return Process.Start(new ProcessStartInfo(Environment.ProcessPath!, [agent, "tcmu-serve", configPath, DeviceName])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
    }

    /// <summary>The handler's device= and adopted= lines (it prints them once the disk exists), and all it printed until then.</summary>
    private static async Task<(string? Device, bool? Adopted, string Output)> ReadAttachAsync(Process handler)
    {
        string? device = null;
        bool? adopted = null;
        var output = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        while (adopted is null && await handler.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            output.Add(line);
            if (line.StartsWith("device=", StringComparison.Ordinal))
            {
                device = line["device=".Length..];
            }
            else if (line.StartsWith("adopted=", StringComparison.Ordinal))
            {
                adopted = line == "adopted=true";
            }
        }

        return (device, adopted, string.Join(" | ", output));
    }
}
