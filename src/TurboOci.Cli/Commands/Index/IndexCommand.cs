using CommandLine;
using TurboOci.Cli.Commands.ZFile;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Formats.GzipIndex;
using TurboOci.Images.Indexing;

namespace TurboOci.Cli.Commands.Index;

/// <summary><c>turbooci index LAYER.tar.gz... --output DIR</c>: TurboOCI fs-meta layers and the stack's config.v1.json.</summary>
[Verb("index", HelpText = "Convert unmodified OCI layer blobs (tar.gz or tar, lowest first) into TurboOCI layers in one streaming pass each: per layer DIR/<n>-<digest>/ with ext4.fs.meta, gzip.meta, gzip.spans and .turbo.ociv1, plus DIR/config.v1.json for the stack (export --config and overlaybd read it).")]
public sealed class IndexCommand : ICommand
{
    [Value(0, MetaName = "LAYER", Min = 1, Required = true, HelpText = "Layer blobs (gzip or plain tar), lowest first; they are referenced, not copied, by the config.")]
    public IEnumerable<string> Layers { get; set; } = [];

    [Option('o', "output", Required = true, HelpText = "Output folder; one sub-folder per layer and config.v1.json (paths inside are relative to it).")]
    public string Output { get; set; } = string.Empty;

    [Option("base", HelpText = "Base layer the stack starts from (an LSMT/ZFile layer holding an ext4). Default: overlaybd's stock ext4_64 (empty 64 GiB ext4), built in and written to DIR/base/ext4_64.")]
    public string? Base { get; set; }

    [Option("span", Default = GzipIndexOptions.DefaultSpan, HelpText = "gzip index span in uncompressed bytes (at least 65536); the default 1 MiB with --exact-gzip-index gives overlaybd's gzip.meta byte for byte.")]
    public int Span { get; set; } = GzipIndexOptions.DefaultSpan;

    [Option("exact-gzip-index", HelpText = "Store every gzip.meta window whole, as overlaybd does: with the default span the file is overlaybd's byte for byte. Default: windows keep only the bytes the compressed data after each access point reads (the others are zeroed), so gzip.meta is about a fifth the size and still reads the same in overlaybd.")]
    public bool ExactGzipIndex { get; set; }

    [Option("mode", Default = "mapped", HelpText = "mapped: TurboOCI fs-meta whose file data stay in the original blob; copied: native overlaybd layers (overlaybd.commit) holding the data.")]
    public string Mode { get; set; } = "mapped";

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var mode = Mode.ToLowerInvariant() switch
        {
            "mapped" => LayerDataMode.Mapped,
            "copied" => LayerDataMode.Copied,
            _ => throw new ArgumentException($"--mode must be mapped or copied, not '{Mode}'"),
        };

        var blobs = Layers.ToList();
        var done = 0;
        IReadOnlyList<IndexedLayer> layers;
        ZFileCommandSupport.Progress? progress = null;
        try
        {
            var options = new LayerIndexOptions
            {
                Mode = mode,
                Span = Span,
                SparseWindows = !ExactGzipIndex,
                Progress = read =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress ??= new ZFileCommandSupport.Progress($"indexing {Path.GetFileName(blobs[done])}", new FileInfo(blobs[done]).Length);
                    progress.Report(read);
                },
            };
            layers = StackIndexer.Index(blobs, Output, Base, options, line =>
            {
                progress?.Dispose();
                progress = null;
                Console.Error.WriteLine($"[{++done}/{blobs.Count}] {line}");
            });
        }
        finally
        {
            progress?.Dispose();
        }

        var metaBytes = layers.Sum(l => new FileInfo(l.LayerFile).Length + (l.GzipIndex.Length > 0 ? new FileInfo(l.GzipIndex).Length : 0));
        var blobBytes = layers.Sum(l => l.BlobBytes);
        Console.Error.WriteLine($"{Path.Combine(Output, StackIndexer.ConfigName)}: {layers.Count} layers; layer metadata {ZFileCommandSupport.Size(metaBytes)} " +
            $"= {100.0 * metaBytes / Math.Max(1, blobBytes):0.00}% of {ZFileCommandSupport.Size(blobBytes)} of blobs");
        return Task.FromResult(ExitCodes.Success);
    }
}
