using CommandLine;
using TurboOci.Registry;

namespace TurboOci.Cli.Commands.Registry;

/// <summary><c>turbooci cache prune</c>: shrink the range cache, drop one blob, or drop damaged entries.</summary>
[VerbGroup("cache", RegistryCommandSupport.CacheGroupHelp)]
[Verb("prune", HelpText = "Shrink the registry range cache to --to (least recently used first; default: empty it), drop one --blob, or --verify every entry and delete damaged ones.")]
public sealed class CachePruneCommand : CacheCommandBase, ICommand
{
    [Option("to", HelpText = "Keep at most this much (e.g. 1G); least recently used ranges go first. Default 0: remove everything.")]
    public string? To { get; set; }

    [Option("blob", HelpText = "Remove only the ranges of this blob digest.")]
    public string? Blob { get; set; }

    [Option("verify", HelpText = "Check every entry's header and CRC-32C and delete damaged ones (nothing else is removed unless --to or --blob is given).")]
    public bool Verify { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var cache = OpenCache();
        var before = cache.GetStats();
        if (Verify)
        {
            var (good, removed) = cache.Verify();
            Console.WriteLine($"verified {good + removed} entries: {good} good, {removed} damaged and removed");
        }

        if (Blob is not null)
        {
            cache.RemoveBlob(Digest.Parse(Blob));
        }
        else if (!Verify || To is not null)
        {
            cache.EvictTo(To is null ? 0 : RegistryCommandSupport.ParseSize(To, "--to"));
        }

        var after = cache.GetStats();
        Console.WriteLine($"{cache.Root}: {RegistryCommandSupport.Bytes(before.Bytes)} -> {RegistryCommandSupport.Bytes(after.Bytes)} ({before.Entries - after.Entries} ranges removed)");
        return Task.FromResult(ExitCodes.Success);
    }
}
