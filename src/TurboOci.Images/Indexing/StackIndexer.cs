using TurboOci.Formats.Ext4.Oci;

namespace TurboOci.Images.Indexing;

/// <summary>
/// Indexes the layers of an image lowest first, each on the stack of the base layer and the layers indexed
/// before it, into <c>DIR/&lt;n&gt;-&lt;short digest&gt;/</c>, and writes <c>DIR/config.v1.json</c> for the
/// whole stack with paths relative to DIR (so the folder can move).
/// </summary>
public static class StackIndexer
{
    public const string ConfigName = "config.v1.json";
    public const string BaseFolder = "base";

    /// <param name="blobs">Layer blobs, lowest first.</param>
    /// <param name="baseLayer">The base layer file; null extracts overlaybd's stock <c>ext4_64</c> to <c>DIR/base/</c>.</param>
    /// <param name="log">Receives one line per finished layer.</param>
    public static IReadOnlyList<IndexedLayer> Index(IReadOnlyList<string> blobs, string outputDirectory, string? baseLayer = null,
        LayerIndexOptions? options = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        options ??= new LayerIndexOptions();
        var root = Path.GetFullPath(outputDirectory);
        Directory.CreateDirectory(root);
        baseLayer = baseLayer is null
            ? StockBaseLayer.ExtractTo(Path.Combine(root, BaseFolder, StockBaseLayer.FileName))
            : Path.GetFullPath(baseLayer);

        var lowers = new List<LowerLayer> { new() { File = Path.GetRelativePath(root, baseLayer) } };
        var indexed = new List<IndexedLayer>();
        for (var i = 0; i < blobs.Count; i++)
        {
            var config = new ImageConfig { Lowers = lowers };
            var working = Path.Combine(root, $"{i}-indexing");
            IndexedLayer layer;
            using (var below = ImageStack.OpenLowers(config.ResolveRelativeTo(root)))
            {
                layer = LayerIndexer.Index(blobs[i], below, working, options);
            }

            var folder = Path.Combine(root, $"{i}-{ShortDigest(layer.BlobDigest)}");
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }

            Directory.Move(working, folder);
            layer = layer.MovedTo(folder);
            indexed.Add(layer);
            lowers.Add(Relative(layer.ToLower(), root, options.Mode));
            log?.Invoke($"{blobs[i]}: {layer.Applied.Entries} entries, {layer.Applied.FileBytes} file bytes -> {folder}");
        }

        File.WriteAllBytes(Path.Combine(root, ConfigName), new ImageConfig { Lowers = lowers }.ToJson());
        return indexed;
    }

    private static string ShortDigest(string digest) => digest[(digest.IndexOf(':') + 1)..][..12];

    private static LowerLayer Relative(LowerLayer lower, string root, LayerDataMode mode)
    {
        string Rel(string p) => p.Length == 0 ? p : Path.GetRelativePath(root, p);
        return mode == LayerDataMode.Copied
            ? new LowerLayer { File = Rel(lower.File) }
            : lower with { File = Rel(lower.File), TargetFile = Rel(lower.TargetFile), GzipIndex = Rel(lower.GzipIndex), SpanDigests = Rel(lower.SpanDigests) };
    }
}
