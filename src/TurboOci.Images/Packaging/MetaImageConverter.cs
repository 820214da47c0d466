using System.Text.Json;
using System.Text.Json.Nodes;
using TurboOci.Images.Indexing;
using TurboOci.Registry;
using TurboOci.Storage;

namespace TurboOci.Images.Packaging;

/// <summary>How <see cref="MetaImageConverter"/> builds a meta image.</summary>
public sealed record MetaImageOptions
{
    /// <summary>OCI media types for the manifest, config and layers (accelerated-container-image's <c>--oci</c>); Docker otherwise.</summary>
    public bool Oci { get; init; }

    /// <summary>Referrer form: OCI media types, <c>artifactType</c> and a <c>subject</c> naming the source manifest; still tagged.</summary>
    public bool Referrer { get; init; }

    /// <summary>gzip index span (overlaybd's 1 MiB by default).</summary>
    public int Span { get; init; } = Formats.GzipIndex.GzipIndexOptions.DefaultSpan;

    /// <summary>The platform taken from a multi-platform source index (default: this machine's).</summary>
    public Platform? Platform { get; init; }

    /// <summary>Scratch folder for blobs and indexing (default: a new temporary folder, removed afterwards).</summary>
    public string? WorkDirectory { get; init; }

    /// <summary>One line per step.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>One meta layer of a converted image and the original layer it describes.</summary>
public sealed record MetaLayer(Descriptor Meta, string DiffId, Descriptor Target);

/// <summary>What a conversion pushed.</summary>
public sealed record MetaImageResult(ManifestContent Manifest, Descriptor Config, Descriptor Source, IReadOnlyList<MetaLayer> Layers);

/// <summary>
/// Builds and publishes a TurboOCIv1 meta image for an unmodified image, as accelerated-container-image's
/// <c>convertor --turboOCI TAG --mkfs=false</c> does (<c>cmd/convertor/builder/turboOCI_builder.go</c>): each
/// layer blob is fetched once and indexed (<see cref="StackIndexer"/>, on overlaybd's stock base layer); each
/// layer folder becomes a meta layer blob (<see cref="MetaLayerBlob"/>); the manifest lists the raw base layer
/// first, then one meta layer per original layer with the overlaybd annotations; the config is the source
/// config with <c>rootfs.diff_ids</c> replaced by the base digest and the meta tars' digests. The original
/// blobs are made present in the destination repository (mounted or uploaded when missing), because the node
/// reads them from the repository of the meta image.
/// </summary>
public sealed class MetaImageConverter(RegistryClient? client = null)
{
    public async Task<MetaImageResult> ConvertAsync(IImageStore source, IImageStore destination, MetaImageOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        options ??= new MetaImageOptions();
        var oci = options.Oci || options.Referrer;
        var (sourceManifest, manifest) = await ResolveAsync(source, options, cancellationToken).ConfigureAwait(false);
        var ownScratch = options.WorkDirectory is null;
        var work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("turbooci-convert-").FullName;
        try
        {
            Directory.CreateDirectory(work);
            var blobs = new List<string>();
            foreach (var layer in manifest.Layers)
            {
                var path = Path.Combine(work, "blobs", layer.ParsedDigest.Hex);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await source.FetchBlobAsync(layer, path, cancellationToken).ConfigureAwait(false);
                RefuseUnsupportedCompression(layer, path);
                blobs.Add(path);
                options.Log?.Invoke($"fetched {layer.Digest} ({layer.Size} bytes)");
            }

            var indexed = StackIndexer.Index(blobs, Path.Combine(work, "index"), options: new LayerIndexOptions { Span = options.Span }, log: options.Log);
            var baseLayer = await PushBaseLayerAsync(Path.Combine(work, "index", StackIndexer.BaseFolder, StockBaseLayer.FileName), oci, source, destination, cancellationToken)
                .ConfigureAwait(false);

            var metaLayers = new List<MetaLayer>();
            for (var i = 0; i < indexed.Count; i++)
            {
                var original = manifest.Layers[i];
                var metaPath = Path.Combine(work, $"meta-{i}.tar.gz");
                var packed = MetaLayerBlob.WriteFile(indexed[i].Folder, metaPath);
                var gzip = indexed[i].GzipIndex.Length > 0;
                var annotations = TurboOciLabels.LayerAnnotations(TurboOciLabels.TurboVersion, packed.Digest, packed.Size);
                annotations[TurboOciLabels.TargetDigest] = original.Digest;
                annotations[TurboOciLabels.TargetMediaType] = TurboOciLabels.LayerMediaType(!TurboOciLabels.IsDockerType(original.MediaType), gzip);
                var meta = new Descriptor
                {
                    MediaType = TurboOciLabels.LayerMediaType(oci, gzip: true),
                    Digest = packed.Digest,
                    Size = packed.Size,
                    Annotations = TurboOciLabels.Sorted(annotations),
                };
                await destination.PutBlobAsync(meta, metaPath, source, cancellationToken).ConfigureAwait(false);
                if (!await destination.HasBlobAsync(original, cancellationToken).ConfigureAwait(false))
                {
                    await destination.PutBlobAsync(original, blobs[i], source, cancellationToken).ConfigureAwait(false);
                }

                metaLayers.Add(new MetaLayer(meta, packed.DiffId, original));
                options.Log?.Invoke($"layer {i + 1}/{indexed.Count}: meta layer {packed.Digest} ({packed.Size} bytes) for {original.Digest}");
            }

            var config = await RewriteConfigAsync(source, manifest.Config, [baseLayer.Digest, .. metaLayers.Select(l => l.DiffId)], oci, work, cancellationToken)
                .ConfigureAwait(false);
            await destination.PutBlobAsync(config.Descriptor, config.Path, source, cancellationToken).ConfigureAwait(false);

            var subject = sourceManifest.Descriptor;
            var metaManifest = new ImageManifest
            {
                MediaType = oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest,
                ArtifactType = options.Referrer ? TurboOciLabels.ArtifactType : null,
                Config = config.Descriptor,
                Layers = [baseLayer, .. metaLayers.Select(l => l.Meta)],
                Subject = options.Referrer ? subject : null,
            };
            var content = TurboOciLabels.ToContent(metaManifest);
            await destination.PutManifestAsync(content, isRoot: true, cancellationToken).ConfigureAwait(false);
            if (options.Referrer)
            {
                await ListAsReferrerAsync(destination, content, metaManifest, subject, cancellationToken).ConfigureAwait(false);
            }

            options.Log?.Invoke($"pushed {destination.Name}: {content.Digest}");
            return new MetaImageResult(content, config.Descriptor, subject, metaLayers);
        }
        finally
        {
            if (ownScratch)
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>The source image manifest; from an index, the entry for the wanted platform.</summary>
    private static async Task<(ManifestContent Content, ImageManifest Manifest)> ResolveAsync(IImageStore source, MetaImageOptions options,
        CancellationToken cancellationToken)
    {
        var root = await source.GetRootAsync(cancellationToken).ConfigureAwait(false);
        if (root.IsIndex)
        {
            var platform = options.Platform ?? Platform.Current;
            var entry = root.AsIndex().Manifests.FirstOrDefault(m => platform.Accepts(m.Platform))
                        ?? throw new InvalidDataException($"{source.Name} is an index with no manifest for {platform}");
            root = await source.GetManifestAsync(entry, cancellationToken).ConfigureAwait(false);
        }

        var manifest = root.AsManifest();
        if (manifest.Layers.Count == 0)
        {
            throw new InvalidDataException($"{source.Name} has no layers to convert");
        }

        var converted = manifest.Layers.Select((layer, i) => (layer, i)).FirstOrDefault(l => l.layer.Annotations?.ContainsKey(TurboOciLabels.Version) == true);
        if (converted.layer is not null)
        {
            // Its base layer is a raw ZFile and its meta layers hold no image files: indexing them would fail obscurely or mean nothing.
            throw new TurboOciFormatException("OCI manifest", $"layers[{converted.i}].annotations", 0,
                $"{source.Name} is already an overlaybd or TurboOCI image (layer {converted.layer.Digest} has {TurboOciLabels.Version}); convert the original image");
        }

        if (manifest.Layers.Count + 1 > ImageConfig.MaxLowers)
        {
            throw new InvalidDataException($"{source.Name} has {manifest.Layers.Count} layers; overlaybd stacks at most {ImageConfig.MaxLowers - 1} on its base layer");
        }

        return (root, manifest);
    }

    /// <summary>Magic numbers of the layer compressions other than gzip, so they are named instead of failing as a damaged tar.</summary>
    private static readonly (string Name, byte[] Magic)[] s_otherCompressions =
    [
        ("zstd", [0x28, 0xB5, 0x2F, 0xFD]),
        ("bzip2", "BZh"u8.ToArray()),
        ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
        ("lz4", [0x04, 0x22, 0x4D, 0x18]),
    ];

    /// <summary>accelerated-container-image accepts gzip and uncompressed layers only (<c>isGzipLayer</c>); say so before indexing.</summary>
    private static void RefuseUnsupportedCompression(Descriptor layer, string path)
    {
        Span<byte> magic = stackalloc byte[6];
        int read;
        using (var file = File.OpenRead(path))
        {
            read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        }

        foreach (var (name, bytes) in s_otherCompressions)
        {
            if (magic[..read].StartsWith(bytes))
            {
                throw new TurboOciFormatException("OCI layer", "compression", 0, $"layer {layer.Digest} is {name}-compressed; TurboOCI indexes gzip or plain tar layers only");
            }
        }
    }

    /// <summary>The raw ext4_64 base layer with its fixed digest, annotated as a native layer (what <c>--mkfs=false</c> uploads).</summary>
    private static async Task<Descriptor> PushBaseLayerAsync(string path, bool oci, IImageStore source, IImageStore destination, CancellationToken cancellationToken)
    {
        var descriptor = new Descriptor
        {
            MediaType = TurboOciLabels.LayerMediaType(oci, gzip: false),
            Digest = TurboOciLabels.BaseLayerDigest,
            Size = TurboOciLabels.BaseLayerSize,
            Annotations = TurboOciLabels.Sorted(TurboOciLabels.LayerAnnotations(TurboOciLabels.NativeVersion, TurboOciLabels.BaseLayerDigest, TurboOciLabels.BaseLayerSize)),
        };
        await using (var file = File.OpenRead(path))
        {
            if (file.Length != descriptor.Size || await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false) != descriptor.ParsedDigest)
            {
                throw new InvalidDataException($"{path} is not overlaybd's stock ext4_64 base layer ({descriptor.Digest})");
            }
        }

        await destination.PutBlobAsync(descriptor, path, source, cancellationToken).ConfigureAwait(false);
        return descriptor;
    }

    /// <summary>The source config, every field kept, with <c>rootfs.diff_ids</c> replaced; written to a file for upload.</summary>
    private static async Task<(Descriptor Descriptor, string Path)> RewriteConfigAsync(IImageStore source, Descriptor sourceConfig, IReadOnlyList<string> diffIds,
        bool oci, string work, CancellationToken cancellationToken)
    {
        if (sourceConfig.Size > ImageConfig.MaxFileSize)
        {
            throw new TurboOciFormatException("OCI config", "size", 0, $"config of {sourceConfig.Size} bytes exceeds {ImageConfig.MaxFileSize}");
        }

        var sourcePath = Path.Combine(work, "source-config.json");
        await source.FetchBlobAsync(sourceConfig, sourcePath, cancellationToken).ConfigureAwait(false);
        JsonObject config;
        try
        {
            config = JsonNode.Parse(await File.ReadAllBytesAsync(sourcePath, cancellationToken).ConfigureAwait(false),
                documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject
                ?? throw new TurboOciFormatException("OCI config", "config", 0, "the image config is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new TurboOciFormatException("OCI config", "config", e.BytePositionInLine ?? 0, $"the image config is not valid JSON: {e.Message}", e);
        }

        if (config["rootfs"] is not JsonObject rootfs)
        {
            rootfs = new JsonObject { ["type"] = "layers" };
            config["rootfs"] = rootfs;
        }

        rootfs["diff_ids"] = new JsonArray([.. diffIds.Select(id => (JsonNode)JsonValue.Create(id))]);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(config, TurboOciLabels.Json);
        var path = Path.Combine(work, "config.json");
        await File.WriteAllBytesAsync(path, bytes, cancellationToken).ConfigureAwait(false);
        var descriptor = new Descriptor
        {
            MediaType = oci ? MediaTypes.OciConfig : TurboOciLabels.DockerConfig,
            Digest = Digest.Sha256(bytes).ToString(),
            Size = bytes.Length,
        };
        return (descriptor, path);
    }

    /// <summary>
    /// A registry that implements the referrers API indexes the subject itself; on one that does not (docker's
    /// distribution), the OCI 1.1 fallback is an index under the tag <c>sha256-&lt;subject hex&gt;</c>, kept here.
    /// </summary>
    private async Task ListAsReferrerAsync(IImageStore destination, ManifestContent content, ImageManifest manifest, Descriptor subject,
        CancellationToken cancellationToken)
    {
        if (destination is not RegistryImageStore registry || client is null)
        {
            return; // an OCI layout has no referrers listing; the tag is what users pull
        }

        var listed = await client.ListReferrersAsync(registry.Image, subject.ParsedDigest, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (listed.Any(d => d.Digest == content.Digest.ToString()))
        {
            return;
        }

        await client.AddToReferrersTagAsync(registry.Image, subject.ParsedDigest, content.Descriptor with { ArtifactType = manifest.ArtifactType },
            cancellationToken).ConfigureAwait(false);
    }
}
