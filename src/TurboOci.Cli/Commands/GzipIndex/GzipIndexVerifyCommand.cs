using CommandLine;
using TurboOci.Formats.GzipIndex;

namespace TurboOci.Cli.Commands.GzipIndex;

/// <summary><c>turbooci gzindex verify IN.tar.gz INDEX.meta</c>.</summary>
[VerbGroup("gzindex", GzipIndexCommandSupport.GroupHelp)]
[Verb("verify", HelpText = "Check that an index matches its gzip blob: header CRC and sizes, every span ends on the next access point, every member's trailer CRC-32/size, and span digests when present. Exit 2 on any mismatch.")]
public sealed class GzipIndexVerifyCommand : ICommand
{
    [Value(0, MetaName = "IN.tar.gz", Required = true, HelpText = "The gzip blob.")]
    public string Input { get; set; } = string.Empty;

    [Value(1, MetaName = "INDEX.meta", Required = true, HelpText = "Its index (gzip.meta).")]
    public string Index { get; set; } = string.Empty;

    [Option("spans", HelpText = "Span digests to check as well (default: INDEX.spans beside the index, if present).")]
    public string? Spans { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var opened = GzipIndexCommandSupport.Open(Input, Index, Spans, new GzipReaderOptions { CacheBytes = 0 });
        var reader = opened.Reader;
        GzipIndexCommandSupport.Stream(reader, 0, reader.Size, "verifying", _ => { }, cancellationToken);

        var h = reader.Index.Header;
        Console.WriteLine($"{Input}: ok with {Index}");
        Console.WriteLine($"  {h.IndexNum} access points, every span inflated and ending on the next one; {h.UncompressFileSize} bytes uncompressed; member trailers checked");
        Console.WriteLine($"  span digests     {(opened.HasDigests ? "every compressed range's SHA-256 and every span's CRC-32 verified" : "none (no .spans file)")}");
        return Task.FromResult(ExitCodes.Success);
    }
}
