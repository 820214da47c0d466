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
        foreach (var blob in blobs.Where(b => !File.Exists(b)))
        {
            throw new FileNotFoundException($"layer blob {blob} does not exist", blob);
        }

        var root = Path.GetFullPath(outputDirectory);
        Directory.CreateDirectory(root);
        baseLayer = baseLayer is null
            ? StockBaseLayer.ExtractTo(Path.Combine(root, BaseFolder, StockBaseLayer.FileName))
            : Path.GetFullPath(baseLayer);

        var lowers = new List<LowerLayer> { new() { File = ConfigPath(root, baseLayer) } };
        var indexed = new List<IndexedLayer>();
        for (var i = 0; i < blobs.Count; i++)
        {
            var config = new ImageConfig { Lowers = lowers };
            var working = Path.Combine(root, $"{i}-indexing");
            IndexedLayer layer;
            try
            {
                using var below = ImageStack.OpenLowers(config.ResolveRelativeTo(root));
                layer = LayerIndexer.Index(blobs[i], below, working, options);
            }
            catch
            {
                if (Directory.Exists(working))
                {
                    Directory.Delete(working, recursive: true);
                }

                throw;
            }

            var folder = Path.Combine(root, $"{i}-{ShortDigest(layer.BlobDigest)}");
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }

            Directory.Move(working, folder);
            layer = layer.MovedTo(folder);
            indexed.Add(layer);
            lowers.Add(Relative(layer.ToLower(), root));
            log?.Invoke($"{blobs[i]}: {layer.Applied.Entries} entries, {layer.Applied.FileBytes} file bytes -> {folder}");
        }

        File.WriteAllBytes(Path.Combine(root, ConfigName), new ImageConfig { Lowers = lowers }.ToJson());
        return indexed;
    }

    private static string ShortDigest(string digest) => digest[(digest.IndexOf(':') + 1)..][..12];

    /// <summary>Paths inside the output folder become relative (the folder can move); blobs elsewhere stay absolute.</summary>
    private static string ConfigPath(string root, string path)
    {
        var relative = path.Length == 0 ? path : Path.GetRelativePath(root, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative;
    }

    private static LowerLayer Relative(LowerLayer lower, string root) => lower with
    {
        File = ConfigPath(root, lower.File),
        TargetFile = ConfigPath(root, lower.TargetFile),
        GzipIndex = ConfigPath(root, lower.GzipIndex),
        SpanDigests = ConfigPath(root, lower.SpanDigests),
    };
}
