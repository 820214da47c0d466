using TurboOci.Frontends.Nbd;
using TurboOci.Images;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>nbd-stack DEVICE CONFIG TREE_JSON RAW_SHA256</c>: the stack exported read-only by our NBD server on a Unix
/// socket and attached by the kernel's client (nbd-client) as DEVICE (<see cref="FrontendStackScenario"/>);
/// after nbd-client -d the device must have size 0 again.
/// </summary>
public static class NbdStackCheck
{
    private const string ExportName = "stack";

    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (args.Length != 4)
        {
            report.Fail("nbd-stack-usage", "nbd-stack DEVICE CONFIG TREE_JSON RAW_SHA256");
            return;
        }

        var (device, config, expected, rawSha256) = (args[0], ImageConfig.Load(args[1]), FileTreeJson.Load(args[2]), args[3]);
        await FrontendStackScenario.ReadOnlyAsync("nbd", config, expected, rawSha256, source => Attach(device, source), report);
    }

    private static ServedDevice Attach(string device, BlockSource source)
    {
        var socket = Path.Combine(Path.GetTempPath(), $"turbooci-nbd-stack-{Environment.ProcessId}.sock");
        var server = NbdServer.Start([new NbdExport(ExportName, source, ReadOnly: true)], new NbdServerOptions { UnixSocketPath = socket });
        var (exit, output) = GuestProcess.Run("nbd-client", "-unix", socket, device, "-N", ExportName, "-b", "4096");
        if (exit != 0)
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new InvalidOperationException($"nbd-client {device} exited {exit}: {output.Trim()}");
        }

        var sizeFile = $"/sys/block/{Path.GetFileName(device)}/size";
        return new ServedDevice(
            device,
            new Detach(device, server),
            () => (server.ProtocolErrors == 0, $"{server.ProtocolErrors} protocol errors"),
            () => (File.ReadAllText(sizeFile).Trim() == "0", $"{sizeFile} reads {File.ReadAllText(sizeFile).Trim()} after nbd-client -d"));
    }

    /// <summary>Disconnects the kernel's client, then stops the server.</summary>
    private sealed class Detach(string device, NbdServer server) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            var (exit, output) = GuestProcess.Run("nbd-client", "-d", device);
            await server.DisposeAsync();
            if (exit != 0)
            {
                throw new InvalidOperationException($"nbd-client -d {device} exited {exit}: {output.Trim()}");
            }
        }
    }
}
