using CommandLine;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;

namespace TurboOci.Cli.Commands.GzipIndex;

/// <summary><c>turbooci gzindex build IN.tar.gz OUT.meta [--span N] [--spans OUT.spans]</c>.</summary>
[VerbGroup("gzindex", GzipIndexCommandSupport.GroupHelp)]
[Verb("build", HelpText = "Index a gzip blob in one pass: writes overlaybd's gzip.meta (byte-identical to overlaybd's at the default 1 MiB span) and optionally span digests.")]
public sealed class GzipIndexBuildCommand : ICommand
{
    [Value(0, MetaName = "IN.tar.gz", Required = true, HelpText = "The gzip blob (any gzip; all members are indexed). '-' reads standard input.")]
    public string Input { get; set; } = string.Empty;

    [Value(1, MetaName = "OUT.meta", Required = true, HelpText = "Where to write the index (overlaybd's ddgzidx format).")]
    public string Output { get; set; } = string.Empty;

    [Option("span", Default = "1M", HelpText = "Target distance between access points in uncompressed bytes (K/M suffixes; at least 64K). 1M gives overlaybd's index byte for byte.")]
    public string Span { get; set; } = "1M";

    [Option("spans", HelpText = "Also write span digests (SHA-256 of each span's compressed bytes, CRC-32 of its output) to this file, so readers can verify every fetched range.")]
    public string? SpansOutput { get; set; }

    [Option("level", Default = 6, HelpText = "zlib level for the stored windows and entry table (overlaybd uses 6).")]
    public int Level { get; set; } = 6;

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = new GzipIndexOptions { Span = GzipIndexCommandSupport.ParseSize(Span), Level = Level, SpanDigests = SpansOutput is not null };
        using var input = Input == "-" ? Console.OpenStandardInput() : new FileStream(Input, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var total = Input == "-" ? 0 : input.Length;
        GzipIndexBuildResult result;
        using (var output = new FileStream(Output, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        using (var progress = new GzipIndexCommandSupport.Progress("indexing", total))
        {
            result = GzipIndexBuilder.Build(input, output, SystemZlib.Instance, SystemZlib.Instance, options, new Progress<long>(progress.Report));
        }

        if (SpansOutput is not null)
        {
            File.WriteAllBytes(SpansOutput, result.Spans!.ToBytes());
        }

        var h = result.Header;
        Console.WriteLine($"{Output}: {h.IndexNum} access points, {h.IndexFileSize} bytes ({100.0 * h.IndexFileSize / Math.Max(1, h.GzipFileSize):F2}% of the {h.GzipFileSize}-byte blob), {h.UncompressFileSize} bytes uncompressed");
        if (result.Members > 1)
        {
            Console.WriteLine($"  {result.Members} gzip members, all indexed (overlaybd would index only the first; header flag bit 0 is set)");
        }

        if (result.TrailingBytes > 0)
        {
            Console.WriteLine($"  {result.TrailingBytes} bytes after the last member ignored (as gzip does)");
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
