namespace TurboOci.Registry;

/// <summary>One side of an image copy: a registry repository or an OCI layout folder.</summary>
public interface IImageStore
{
    /// <summary>For messages.</summary>
    string Name { get; }

    /// <summary>The manifest or index the copy starts from (source) .</summary>
    Task<ManifestContent> GetRootAsync(CancellationToken cancellationToken);

    Task<ManifestContent> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken);

    Task<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken);

    /// <summary>Copies a blob into a local file, verified.</summary>
    Task FetchBlobAsync(Descriptor blob, string path, CancellationToken cancellationToken);

    /// <summary>Stores a verified local file as a blob.</summary>
    Task PutBlobAsync(Descriptor blob, string path, IImageStore source, CancellationToken cancellationToken);

    /// <summary>Stores a child manifest (by digest) or the root (under the store's tag).</summary>
    Task PutManifestAsync(ManifestContent manifest, bool isRoot, CancellationToken cancellationToken);
}

/// <summary>
/// Parses copy endpoints: <c>oci:DIR[:tag]</c> is a layout, anything else (optionally <c>docker://</c>) an image reference.
/// </summary>
public static class ImageStores
{
    public static IImageStore Parse(string text, RegistryClient client)
    {
        if (text.StartsWith("oci:", StringComparison.Ordinal))
        {
            var rest = text[4..];
            var colon = rest.LastIndexOf(':');
            var slash = rest.LastIndexOf('/');
            return colon > slash ? new LayoutImageStore(new OciLayout(rest[..colon]), rest[(colon + 1)..]) : new LayoutImageStore(new OciLayout(rest), null);
        }

        var reference = text.StartsWith("docker://", StringComparison.Ordinal) ? text["docker://".Length..] : text;
        return new RegistryImageStore(client, ImageReference.Parse(reference));
    }
}

public sealed class RegistryImageStore(RegistryClient client, ImageReference image) : IImageStore
{
    public ImageReference Image => image;

    public string Name => image.ToString();

    public Task<ManifestContent> GetRootAsync(CancellationToken cancellationToken) => client.GetManifestAsync(image, cancellationToken);

    public Task<ManifestContent> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        client.GetManifestAsync(image.WithDigest(descriptor.ParsedDigest), cancellationToken);

    public async Task<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) =>
        await client.HeadBlobAsync(image, blob.ParsedDigest, cancellationToken).ConfigureAwait(false) is not null;

    public async Task FetchBlobAsync(Descriptor blob, string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        var size = await client.DownloadBlobAsync(image, blob.ParsedDigest, file, null, cancellationToken).ConfigureAwait(false);
        if (size != blob.Size)
        {
            throw new InvalidDataException($"blob {blob.Digest}: {size} bytes, descriptor says {blob.Size}");
        }
    }

    public Task PutBlobAsync(Descriptor blob, string path, IImageStore source, CancellationToken cancellationToken)
    {
        // Same registry: let it link the blob from the source repository instead of uploading it.
        var mountFrom = source is RegistryImageStore other && other.Image.Registry == image.Registry ? other.Image.Repository : null;
        return client.PushBlobAsync(image, blob.ParsedDigest, blob.Size, () => File.OpenRead(path), mountFrom, cancellationToken: cancellationToken);
    }

    public async Task PutManifestAsync(ManifestContent manifest, bool isRoot, CancellationToken cancellationToken) =>
        await client.PutManifestAsync(isRoot && image.Digest is null ? image : image with { Tag = null, Digest = manifest.Digest }, manifest, cancellationToken).ConfigureAwait(false);
}

public sealed class LayoutImageStore(OciLayout layout, string? tag) : IImageStore
{
    public string Name => $"oci:{layout.Directory}{(tag is null ? "" : ":" + tag)}";

    public Task<ManifestContent> GetRootAsync(CancellationToken cancellationToken) =>
        Task.FromResult(layout.ReadManifest(layout.Resolve(tag)));

    public Task<ManifestContent> GetManifestAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        Task.FromResult(layout.ReadManifest(descriptor));

    public Task<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) =>
        Task.FromResult(layout.HasBlob(blob.ParsedDigest) && new FileInfo(layout.BlobPath(blob.ParsedDigest)).Length == blob.Size);

    public async Task FetchBlobAsync(Descriptor blob, string path, CancellationToken cancellationToken)
    {
        var source = layout.BlobPath(blob.ParsedDigest);
        File.Copy(source, path, overwrite: true);
        await using var file = File.OpenRead(path);
        if (await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false) != blob.ParsedDigest)
        {
            throw new InvalidDataException($"{source} does not match its digest");
        }
    }

    public Task PutBlobAsync(Descriptor blob, string path, IImageStore source, CancellationToken cancellationToken)
    {
        layout.Initialize();
        var target = layout.BlobPath(blob.ParsedDigest);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(path, target + ".partial", overwrite: true);
        File.Move(target + ".partial", target, overwrite: true);
        return Task.CompletedTask;
    }

    public Task PutManifestAsync(ManifestContent manifest, bool isRoot, CancellationToken cancellationToken)
    {
        layout.Initialize();
        layout.WriteBlob(manifest.Digest, manifest.Bytes.Span);
        if (isRoot)
        {
            layout.Tag(manifest.Descriptor, tag ?? ImageReference.DefaultTag);
        }

        return Task.CompletedTask;
    }
}

/// <summary>What an image copy did.</summary>
public sealed record CopyResult(Digest RootDigest, int BlobsCopied, int BlobsSkipped, long BytesCopied);

/// <summary>Copies an image (manifest or index with every platform) between registries and layouts, moving only missing blobs.</summary>
public sealed class ImageCopier(Action<string>? log = null)
{
    public async Task<CopyResult> CopyAsync(IImageStore source, IImageStore destination, CancellationToken cancellationToken = default)
    {
        var root = await source.GetRootAsync(cancellationToken).ConfigureAwait(false);
        var copied = 0;
        var skipped = 0;
        long bytes = 0;
        var children = root.IsIndex
            ? await Task.WhenAll(root.AsIndex().Manifests.Select(d => source.GetManifestAsync(d, cancellationToken))).ConfigureAwait(false)
            : [root];
        var scratch = Directory.CreateTempSubdirectory("turbooci-copy-");
        try
        {
            foreach (var child in children)
            {
                var manifest = child.AsManifest();
                foreach (var blob in manifest.Layers.Prepend(manifest.Config).DistinctBy(b => b.Digest))
                {
                    if (await destination.HasBlobAsync(blob, cancellationToken).ConfigureAwait(false))
                    {
                        skipped++;
                        continue;
                    }

                    var path = Path.Combine(scratch.FullName, blob.ParsedDigest.Hex);
                    await source.FetchBlobAsync(blob, path, cancellationToken).ConfigureAwait(false);
                    await destination.PutBlobAsync(blob, path, source, cancellationToken).ConfigureAwait(false);
                    File.Delete(path);
                    copied++;
                    bytes += blob.Size;
                    log?.Invoke($"copied {blob.Digest} ({blob.Size} bytes)");
                }

                if (root.IsIndex)
                {
                    await destination.PutManifestAsync(child, isRoot: false, cancellationToken).ConfigureAwait(false);
                }
            }

            await destination.PutManifestAsync(root, isRoot: true, cancellationToken).ConfigureAwait(false);
            return new CopyResult(root.Digest, copied, skipped, bytes);
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }
}
