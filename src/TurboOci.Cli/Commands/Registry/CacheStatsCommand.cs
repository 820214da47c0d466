using System.Text.Json;
using CommandLine;

namespace TurboOci.Cli.Commands.Registry;

/// <summary><c>turbooci cache stats</c>: what the range cache holds.</summary>
[VerbGroup("cache", RegistryCommandSupport.CacheGroupHelp)]
[Verb("stats", HelpText = "Show the registry range cache: folder, entries, bytes, blobs and capacity.")]
public sealed class CacheStatsCommand : CacheCommandBase, ICommand
{
    [Option("json", HelpText = "Print one JSON object instead of text.")]
    public bool Json { get; set; }

    [Option("blobs", HelpText = "Also list bytes cached per blob.")]
    public bool PerBlob { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var cache = OpenCache();
        var stats = cache.GetStats();
        var blobs = cache.Scan().GroupBy(e => e.Blob).Select(g => new { Blob = g.Key.ToString(), Ranges = g.Count(), Bytes = g.Sum(e => e.Bytes) }).OrderByDescending(b => b.Bytes).ToList();
        if (Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                directory = cache.Root,
                entries = stats.Entries,
                bytes = stats.Bytes,
                blobs = stats.Blobs,
                capacityBytes = stats.CapacityBytes,
                perBlob = PerBlob ? blobs : null,
            }));
            return Task.FromResult(ExitCodes.Success);
        }

        Console.WriteLine($"{cache.Root}");
        Console.WriteLine($"  entries   {stats.Entries} ranges of {stats.Blobs} blobs");
        Console.WriteLine($"  size      {RegistryCommandSupport.Bytes(stats.Bytes)} of {RegistryCommandSupport.Bytes(stats.CapacityBytes)} ({100.0 * stats.Bytes / stats.CapacityBytes:0.0}%)");
        if (PerBlob)
        {
            foreach (var blob in blobs)
            {
                Console.WriteLine($"    {blob.Blob}  {blob.Ranges,6} ranges  {RegistryCommandSupport.Bytes(blob.Bytes)}");
            }
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
