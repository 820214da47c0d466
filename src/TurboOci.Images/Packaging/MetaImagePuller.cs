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
/// The image is untrusted: descriptors must agree with their annotations and with the blobs they name, meta layers
/// are unpacked within <see cref="MetaLayerLimits"/> and checked against their originals (<see cref="MetaLayerCheck"/>),
/// and only a fully checked image gets a config.v1.json. Nothing is written outside <c>DIR</c>.
/// </summary>
public sealed class MetaImagePuller(RegistryClient? client = null)
{
    public const string BlobsFolder = "blobs";

    /// <summary>Pulls the meta image at <paramref name="image"/> into <paramref name="directory"/>; returns the written config (paths resolved).</summary>
    public async Task<ImageConfig> PullAsync(IImageStore image, string directory, MetaLayerLimits? limits = null, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        limits ??= new MetaLayerLimits();
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

            CheckDescriptor(layer, i, annotations);
            var turbo = version is TurboOciLabels.TurboVersion or TurboOciLabels.LegacyFastOciVersion;
            if (turbo && target is null)
            {
                // Read as a native layer, the meta tar.gz would only fail later as "not an LSMT file".
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations", 0,
                    $"layer {layer.Digest} is a {version} meta layer without a {TurboOciLabels.TargetDigest} annotation: the original blob is unknown");
            }

            if (target is null)
            {
                // A native overlaybd layer (the raw base layer of a --mkfs=false image): the blob is the lower itself.
                var native = await FetchAsync(image, layer, root, cancellationToken).ConfigureAwait(false);
                WithLayerContext(layer, i, () => MetaLayerCheck.CheckNative(native));
                lowers.Add(new LowerLayer { File = native, Digest = layer.Digest, Size = layer.Size });
                continue;
            }

            if (!turbo)
            {
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations", 0, $"layer {layer.Digest}: version '{version}' with a target digest");
            }

            var targetType = annotations.GetValueOrDefault(TurboOciLabels.TargetMediaType)
                             ?? annotations.GetValueOrDefault(TurboOciLabels.LegacyTargetMediaType) ?? "";
            var targetDescriptor = new Descriptor { MediaType = targetType, Digest = target };
            var folder = Path.Combine(root, $"{i}-{targetDescriptor.ParsedDigest.Hex[..12]}");
            if (layer.Size > limits.MaxBlobBytes)
            {
                // Refused before a byte is downloaded: the unpacker's limits could never accept what it holds.
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].size", 0,
                    $"meta layer {layer.Digest} declares {layer.Size} bytes, more than the {limits.MaxBlobBytes} a meta layer may have");
            }

            var metaBlob = await FetchAsync(image, layer, root, cancellationToken).ConfigureAwait(false);
            var contents = UnpackMetaLayer(metaBlob, folder, limits);
            File.Delete(metaBlob); // what stays is the unpacked folder, as on the node
            var gzip = TurboOciLabels.IsGzipLayer(targetType);
            if (gzip != contents.HasGzipIndex)
            {
                Directory.Delete(folder, recursive: true);
                throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}]", 0,
                    $"layer {layer.Digest}: target media type '{targetType}' but the meta layer {(contents.HasGzipIndex ? "has" : "has no")} gzip.meta");
            }

            var original = await FetchAsync(image, targetDescriptor, root, cancellationToken, sizeKnown: false).ConfigureAwait(false);
            try
            {
                WithLayerContext(layer, i, () => MetaLayerCheck.Check(folder, original, gzip));
            }
            catch (TurboOciFormatException)
            {
                Directory.Delete(folder, recursive: true);
                throw;
            }

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

    /// <summary>
    /// The descriptor's own claims must agree: the blob-digest and blob-size annotations (which overlaybd-snapshotter
    /// uses to fetch the layer) name the blob the descriptor names, and the size is not negative.
    /// </summary>
    private static void CheckDescriptor(Descriptor layer, int i, IReadOnlyDictionary<string, string> annotations)
    {
        if (layer.Size < 0)
        {
            throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].size", 0, $"layer {layer.Digest} declares a negative size {layer.Size}");
        }

        if (annotations.GetValueOrDefault(TurboOciLabels.BlobDigest) is { } digest && digest != layer.Digest)
        {
            throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations[{TurboOciLabels.BlobDigest}]", 0,
                $"names {digest}, but the descriptor is {layer.Digest}");
        }

        if (annotations.GetValueOrDefault(TurboOciLabels.BlobSize) is { } size &&
            (!long.TryParse(size, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) || parsed != layer.Size))
        {
            throw new TurboOciFormatException(MetaLayerBlob.FormatName, $"layers[{i}].annotations[{TurboOciLabels.BlobSize}]", 0,
                $"says '{size}', but layer {layer.Digest} is {layer.Size} bytes");
        }
    }

    /// <summary>Runs a check of a layer's files; its format error keeps format, field and offset and names the layer.</summary>
    private static void WithLayerContext(Descriptor layer, int i, Action check)
    {
        try
        {
            check();
        }
        catch (TurboOciFormatException e)
        {
            throw new TurboOciFormatException(e.Format, e.Field, e.Offset, $"layer {layer.Digest} (layers[{i}]): {e.Problem}", e);
        }
    }

    private static MetaLayerContents UnpackMetaLayer(string blob, string folder, MetaLayerLimits limits)
    {
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        using var input = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return MetaLayerBlob.UnpackToFolder(input, folder, limits);
    }

    /// <summary>
    /// Downloads a blob (digest-checked) to <c>DIR/blobs/&lt;hex&gt;</c>, unless a verified copy is there; then its
    /// size must be the descriptor's (a digest match proves the bytes, not the descriptor's other claims).
    /// </summary>
    /// <param name="sizeKnown">False for a target blob: the meta manifest names its digest only.</param>
    private async Task<string> FetchAsync(IImageStore image, Descriptor blob, string root, CancellationToken cancellationToken, bool sizeKnown = true)
    {
        var path = Path.Combine(root, BlobsFolder, blob.ParsedDigest.Hex);
        if (!await IsVerifiedCopyAsync(path, blob.ParsedDigest, cancellationToken).ConfigureAwait(false))
        {
            var partial = path + ".partial";
            if (image is RegistryImageStore registry)
            {
                var registryClient = client ?? throw new InvalidOperationException("pulling from a registry needs a RegistryClient");
                await using var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await registryClient.DownloadBlobAsync(registry.Image, blob.ParsedDigest, file, null, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await image.FetchBlobAsync(blob, partial, cancellationToken).ConfigureAwait(false);
            }

            File.Move(partial, path, overwrite: true);
        }

        var actual = new FileInfo(path).Length;
        if (sizeKnown && actual != blob.Size)
        {
            throw new TurboOciFormatException("OCI", "descriptor.size", 0, $"blob {blob.Digest} is {actual} bytes, its descriptor says {blob.Size}");
        }

        return path;
    }

    private static async Task<bool> IsVerifiedCopyAsync(string path, Digest digest, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        await using var existing = File.OpenRead(path);
        return await Digest.Sha256Async(existing, cancellationToken).ConfigureAwait(false) == digest;
    }

    private static string RelativePath(string root, string path) => path.Length == 0 ? path : Path.GetRelativePath(root, path);

    private static LowerLayer Relative(LowerLayer lower, string root) => lower with
    {
        File = RelativePath(root, lower.File),
        TargetFile = RelativePath(root, lower.TargetFile),
        GzipIndex = RelativePath(root, lower.GzipIndex),
    };
}
