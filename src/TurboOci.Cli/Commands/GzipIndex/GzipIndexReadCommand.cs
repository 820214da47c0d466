using CommandLine;
using TurboOci.Formats.GzipIndex;

namespace TurboOci.Cli.Commands.GzipIndex;

/// <summary><c>turbooci gzindex read IN.tar.gz INDEX.meta --offset N --length N [--out FILE]</c>.</summary>
[VerbGroup("gzindex", GzipIndexCommandSupport.GroupHelp)]
[Verb("read", HelpText = "Read a range of the uncompressed stream through the index, inflating only from the nearest access point.")]
public sealed class GzipIndexReadCommand : ICommand
{
    [Value(0, MetaName = "IN.tar.gz", Required = true, HelpText = "The gzip blob the index was built for.")]
    public string Input { get; set; } = string.Empty;

    [Value(1, MetaName = "INDEX.meta", Required = true, HelpText = "Its index (gzip.meta).")]
    public string Index { get; set; } = string.Empty;

    [Option("offset", Default = 0L, HelpText = "Uncompressed offset to start at.")]
    public long Offset { get; set; }

    [Option("length", Default = -1L, HelpText = "Bytes to read (default: to the end). Short at the end of the stream.")]
    public long Length { get; set; } = -1;

    [Option("out", HelpText = "Write the bytes to this file instead of standard output.")]
    public string? Out { get; set; }

    [Option("spans", HelpText = "Span digests to verify every compressed range with (default: INDEX.spans beside the index, if present).")]
    public string? Spans { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        if (Offset < 0)
        {
            throw new ArgumentException("--offset must not be negative");
        }

        using var opened = GzipIndexCommandSupport.Open(Input, Index, Spans, new GzipReaderOptions { CacheBytes = 0 });
        var reader = opened.Reader;
        var end = Length < 0 ? reader.Size : Math.Min(reader.Size, checked(Offset + Length));
        using var output = Out is null ? Console.OpenStandardOutput() : new FileStream(Out, FileMode.Create, FileAccess.Write);
        GzipIndexCommandSupport.Stream(reader, Offset, end, "reading", output.Write, cancellationToken);
        return Task.FromResult(ExitCodes.Success);
    }
}
