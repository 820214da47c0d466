using TurboOci.Registry;
using TurboOci.Storage;

namespace TurboOci.Images.Packaging;

/// <summary>
/// The node's side of a TurboOCIv1 meta image, as overlaybd-snapshotter assembles it (ACI <c>pkg/snapshot/overlay.go</c>
/// <c>Commit</c>, <c>storage.go</c> <c>ConstructOverlayBDSpec</c>): each meta layer blob is unpacked into its own
/// folder, and <c>config.v1.json</c> gets one lower per layer: the raw base layer as a native lower, then per meta
/// layer <c>file</c> = its ext4.fs.meta, <c>targetDigest</c> = the original blob, <c>gzipIndex</c> when that blob
/// is gzip. The original blobs are downloaded here (<c>targetFile</c>); reading them lazily from the registry is
/// the device service's business. Paths in the config are relative to <c>DIR</c>, so the folder can move.
/// </summary>
public sealed class MetaImagePuller(RegistryClient? client = null)
{
    public const string BlobsFolder = "blobs";

    /// <summary>Pulls the meta image at <paramref name="image"/> into <paramref name="directory"/>; returns the written config (paths resolved).</summary>
    public async Task<ImageConfig> PullAsync(IImageStore image, string directory, MetaLayerLimits? limits = null, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        var root = Path.GetFullPath(directory);
        Directory.CreateDirectory(Path.Combine(root, BlobsFolder));
        var top = await image.GetRootAsync(cancellationToken).ConfigureAwait(false);
        var manifest = top.AsManifest();
        if (manifest.Layers.Count + 1 > ImageConfig.MaxLowers)
        {
            throw new TurboOciFormatException(MetaLayerBlob.FormatName, "layers", 0, $"{manifest.Layers.Count} layers exceed overlaybd's {ImageConfig.MaxLowers}");
        }

        var lowers = new List<LowerLayer>();
        for (var i = 0; i < manifest.Layers.Count; i++)
        {
            var layer = manifest.Layers[i];
            var annotations = layer.Annotations ?? new Dictionary<string, string>();
            var version = annotations.GetValueOrDefault(TurboOciLabels.Version);
            var target = annotations.GetValueOrDefault(TurboOciLabels.TargetDigest) ?? annotations.GetValueOrDefault(TurboOciLabels.LegacyTargetDigest);
            if (version is null)
            {
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations", 0,
                    $"layer {layer.Digest} has no {TurboOciLabels.Version} annotation: not an overlaybd or TurboOCI image");
            }

            if (target is null)
            {
                // A native overlaybd layer (the raw base layer of a --mkfs=false image): the blob is the lower itself.
                var native = await FetchAsync(image, layer, root, cancellationToken).ConfigureAwait(false);
                lowers.Add(new LowerLayer { File = native, Digest = layer.Digest, Size = layer.Size });
                continue;
            }

            if (version is not (TurboOciLabels.TurboVersion or TurboOciLabels.LegacyFastOciVersion))
            {
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations", 0, $"layer {layer.Digest}: version '{version}' with a target digest");
            }

            var targetType = annotations.GetValueOrDefault(TurboOciLabels.TargetMediaType)
                             ?? annotations.GetValueOrDefault(TurboOciLabels.LegacyTargetMediaType) ?? "";
            var targetDescriptor = new Descriptor { MediaType = targetType, Digest = target };
            var folder = Path.Combine(root, $"{i}-{targetDescriptor.ParsedDigest.Hex[..12]}");
            var metaBlob = await FetchAsync(image, layer, root, cancellationToken).ConfigureAwait(false);
            var contents = UnpackMetaLayer(metaBlob, folder, limits);
            File.Delete(metaBlob); // what stays is the unpacked folder, as on the node
            var gzip = TurboOciLabels.IsGzipLayer(targetType);
            if (gzip != contents.HasGzipIndex)
            {
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}]", 0,
                    $"layer {layer.Digest}: target media type '{targetType}' but the meta layer {(contents.HasGzipIndex ? "has" : "has no")} gzip.meta");
            }

            var original = await FetchAsync(image, targetDescriptor, root, cancellationToken, sizeKnown: false).ConfigureAwait(false);
            lowers.Add(new LowerLayer
            {
                File = Path.Combine(folder, Indexing.LayerIndexer.FsMetaName),
                TargetFile = original,
                TargetDigest = target,
                GzipIndex = gzip ? Path.Combine(folder, Indexing.LayerIndexer.GzipIndexName) : "",
            });
            log?.Invoke($"layer {i + 1}/{manifest.Layers.Count}: {layer.Digest} -> {folder}");
        }

        var config = new ImageConfig { Lowers = lowers.Select(l => Relative(l, root)).ToList() };
        await File.WriteAllBytesAsync(Path.Combine(root, Indexing.StackIndexer.ConfigName), config.ToJson(), cancellationToken).ConfigureAwait(false);
        return config.ResolveRelativeTo(root);
    }

    private static MetaLayerContents UnpackMetaLayer(string blob, string folder, MetaLayerLimits? limits)
    {
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        using var input = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return MetaLayerBlob.UnpackToFolder(input, folder, limits);
    }

    /// <summary>Downloads a blob (digest-checked) to <c>DIR/blobs/&lt;hex&gt;</c>, unless a verified copy is there.</summary>
    /// <param name="sizeKnown">False for a target blob: the meta manifest names its digest only.</param>
    private async Task<string> FetchAsync(IImageStore image, Descriptor blob, string root, CancellationToken cancellationToken, bool sizeKnown = true)
    {
        var path = Path.Combine(root, BlobsFolder, blob.ParsedDigest.Hex);
        if (File.Exists(path))
        {
            await using var existing = File.OpenRead(path);
            if (await Digest.Sha256Async(existing, cancellationToken).ConfigureAwait(false) == blob.ParsedDigest)
            {
                return path;
            }
        }

        var partial = path + ".partial";
        if (!sizeKnown && image is RegistryImageStore registry)
        {
            var registryClient = client ?? throw new InvalidOperationException("pulling from a registry needs a RegistryClient");
            await using var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            await registryClient.DownloadBlobAsync(registry.Image, blob.ParsedDigest, file, null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // An OCI layout checks the digest (the size of a target blob is not needed there).
            await image.FetchBlobAsync(blob, partial, cancellationToken).ConfigureAwait(false);
        }

        File.Move(partial, path, overwrite: true);
        return path;
    }

    private static string RelativePath(string root, string path) => path.Length == 0 ? path : Path.GetRelativePath(root, path);

    private static LowerLayer Relative(LowerLayer lower, string root) => lower with
    {
        File = RelativePath(root, lower.File),
        TargetFile = RelativePath(root, lower.TargetFile),
        GzipIndex = RelativePath(root, lower.GzipIndex),
    };
}
