using System.Reflection;
using BenchmarkDotNet.Running;

namespace TurboOci.Benchmarks;

/// <summary>
/// A benchmark that measures our code against a peer (a command-line tool, a plain loop device)
/// in the same process run, and prints the ratio. Found by reflection; run as
/// <c>TurboOci.Benchmarks peer NAME [args]</c>.
/// </summary>
public interface IPeerBenchmark
{
    string Name { get; }

    string Description { get; }

    int Run(string[] args);
}

public static class Program
{
    public static int Main(string[] args)
    {
        // As the turbooci process does (src/TurboOci.Cli/Program.cs): socket completions inline.
        if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }

        var peers = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IPeerBenchmark).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IPeerBenchmark)Activator.CreateInstance(t)!)
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ToList();
        if (args.Length >= 1 && args[0] == "peer")
        {
            if (args.Length < 2 || peers.FirstOrDefault(p => p.Name == args[1]) is not { } peer)
            {
                Console.WriteLine("peer benchmarks:");
                foreach (var p in peers)
                {
                    Console.WriteLine($"  {p.Name,-24} {p.Description}");
                }

                return args.Length < 2 ? 0 : 1;
            }

            return peer.Run(args[2..]);
        }

        BenchmarkSwitcher.FromAssembly(Assembly.GetExecutingAssembly()).Run(args);
        return 0;
    }
}
