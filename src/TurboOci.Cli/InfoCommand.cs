using CommandLine;

namespace TurboOci.Cli;

/// <summary>Says what this build is and which optional tools it found on the machine.</summary>
[Verb("info", HelpText = "Show the version, runtime and the external tools TurboOci uses on this machine.")]
public sealed class InfoCommand : ICommand
{
    private static readonly string[] Tools =
        ["e2fsck", "debugfs", "losetup", "pigz", "zstd", "lz4", "skopeo", "umoci", "docker-registry", "nbdinfo", "containerd", "runc"];

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"turbooci {typeof(InfoCommand).Assembly.GetName().Version} on .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        var path = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin"]).Distinct().ToList();
        foreach (var tool in Tools)
        {
            var found = path.Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);
            Console.WriteLine($"  {tool,-16} {found ?? "not found"}");
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
