using CommandLine;
using TurboOci.Daemon;

namespace TurboOci.Cli.Commands.Device;

/// <summary><c>turbooci list [--json]</c> (alias <c>ps</c>).</summary>
[Verb("list", aliases: ["ps"], HelpText = "List the devices the daemon serves: name, frontend, ro/rw, device path or URI, mount point and source (alias: ps).")]
public sealed class ListCommand : DaemonClientCommand
{
    [Option("json", HelpText = "Print {\"devices\": [...]} as JSON, for scripts.")]
    public bool Json { get; set; }

    public override async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var (response, code) = await SendAsync(new ControlRequest { Op = ControlOps.List }, startDaemon: false, cancellationToken).ConfigureAwait(false);
        if (code != ExitCodes.Success)
        {
            return code;
        }

        var devices = response?.Devices ?? [];
        if (Json)
        {
            Console.WriteLine(ControlCodec.DevicesToJson(devices));
        }
        else if (devices.Count == 0)
        {
            Console.WriteLine(response is null ? $"no turbooci daemon runs on {SocketPath}" : "no devices attached");
        }
        else
        {
            PrintTable(devices);
        }

        return code;
    }
}
