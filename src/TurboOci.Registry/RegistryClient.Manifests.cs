using System.Net;
using System.Net.Http.Headers;
using TurboOci.Storage;

namespace TurboOci.Registry;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Fetches a manifest or index by tag or digest. The bytes are bounded and checked: against the
    /// reference's digest when there is one, else against the registry's Docker-Content-Digest header.
    /// Returns null on 404.
    /// </summary>
    public async Task<ManifestContent?> TryGetManifestAsync(ImageReference image, CancellationToken cancellationToken = default)
    {
        var call = new Call(image, HttpMethod.Get, $"/v2/{image.Repository}/manifests/{image.ManifestReference}")
        {
            UseMirrors = true,
            Accept = MediaTypes.AllManifests,
            Accepts = s => s is HttpStatusCode.OK or HttpStatusCode.NotFound,
        };
        return await ExecuteAsync(call, async (response, token) =>
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }

            if (response.Content.Headers.ContentLength > ManifestContent.MaxBytes)
            {
                throw new TurboOciFormatException("OCI", "manifest", 0, $"manifest of {response.Content.Headers.ContentLength} bytes exceeds {ManifestContent.MaxBytes}");
            }

            using var buffer = new BoundedMemoryStream(ManifestContent.MaxBytes, "manifest");
            await response.Content.CopyToAsync(buffer, token).ConfigureAwait(false);
            var bytes = buffer.ToArray();
            var digest = Digest.Sha256(bytes);
            if (image.Digest is { } expected)
            {
                expected.Verify(bytes, "manifest");
                digest = expected;
            }
            else if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) &&
                     Digest.TryParse(values.FirstOrDefault(), out var announced) && announced.Algorithm == "sha256")
            {
                announced.Verify(bytes, "manifest");
            }

            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (mediaType is null || !MediaTypes.AllManifests.Contains(mediaType))
            {
                mediaType = ManifestContent.DeclaredMediaType(bytes) ?? MediaTypes.OciManifest;
            }

            return new ManifestContent(mediaType, bytes, digest);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ManifestContent> GetManifestAsync(ImageReference image, CancellationToken cancellationToken = default) =>
        await TryGetManifestAsync(image, cancellationToken).ConfigureAwait(false)
        ?? throw new RegistryException($"{image} not found", HttpStatusCode.NotFound);

    /// <summary>
    /// Resolves a reference to one image manifest: an index is followed to the entry for
    /// <paramref name="platform"/> (default: this machine's).
    /// </summary>
    public async Task<(ManifestContent Content, ImageManifest Manifest, ManifestContent? Index)> ResolveImageAsync(
        ImageReference image, Platform? platform = null, CancellationToken cancellationToken = default)
    {
        var content = await GetManifestAsync(image, cancellationToken).ConfigureAwait(false);
        if (!content.IsIndex)
        {
            return (content, content.AsManifest(), null);
        }

        var wanted = platform ?? Platform.Current;
        var entry = content.AsIndex().Manifests.FirstOrDefault(m => wanted.Accepts(m.Platform))
                    ?? throw new RegistryException($"{image} has no manifest for platform {wanted}");
        var chosen = await GetManifestAsync(image.WithDigest(entry.ParsedDigest), cancellationToken).ConfigureAwait(false);
        return (chosen, chosen.AsManifest(), content);
    }

    /// <summary>Pushes a manifest or index under a tag (or by its digest when the reference has no tag).</summary>
    /// <returns>Whether the registry processed the <c>subject</c> field itself (OCI-Subject header).</returns>
    public Task<bool> PutManifestAsync(ImageReference image, ManifestContent content, CancellationToken cancellationToken = default)
    {
        var reference = image.Tag ?? content.Digest.ToString();
        return ExecuteAsync(new Call(image, HttpMethod.Put, $"/v2/{image.Repository}/manifests/{reference}")
        {
            Actions = "pull,push",
            Content = () =>
            {
                var body = new ReadOnlyMemoryContent(content.Bytes);
                body.Headers.ContentType = new MediaTypeHeaderValue(content.MediaType);
                return body;
            },
            Accepts = s => s == HttpStatusCode.Created,
        }, (response, _) => Task.FromResult(response.Headers.Contains("OCI-Subject")), cancellationToken);
    }

    /// <summary>Lists a repository's tags (first page of up to 1000).</summary>
    public Task<IReadOnlyList<string>> ListTagsAsync(ImageReference image, CancellationToken cancellationToken = default) =>
        ExecuteAsync(new Call(image, HttpMethod.Get, $"/v2/{image.Repository}/tags/list?n=1000"), async (response, token) =>
        {
            using var buffer = new BoundedMemoryStream(ManifestContent.MaxBytes, "tag list");
            await response.Content.CopyToAsync(buffer, token).ConfigureAwait(false);
            using var document = System.Text.Json.JsonDocument.Parse(buffer.ToArray());
            return (IReadOnlyList<string>)(document.RootElement.TryGetProperty("tags", out var tags) && tags.ValueKind == System.Text.Json.JsonValueKind.Array
                ? tags.EnumerateArray().Select(t => t.GetString() ?? "").ToList()
                : []);
        }, cancellationToken);

    /// <summary>The tag the OCI 1.1 referrers fallback keeps an index of referrers under: <c>sha256-&lt;hex&gt;</c>.</summary>
    public static string ReferrersTag(Digest subject) => $"{subject.Algorithm}-{subject.Hex}";

    /// <summary>
    /// The manifests that name <paramref name="subject"/> as their subject: from the referrers API when the
    /// registry answers it, else from the fallback tag's index.
    /// </summary>
    public async Task<IReadOnlyList<Descriptor>> ListReferrersAsync(ImageReference image, Digest subject, string? artifactType = null,
        CancellationToken cancellationToken = default)
    {
        var call = new Call(image, HttpMethod.Get, $"/v2/{image.Repository}/referrers/{subject}")
        {
            Accept = [MediaTypes.OciIndex],
            Accepts = s => s is HttpStatusCode.OK or HttpStatusCode.NotFound,
        };
        var fromApi = await ExecuteAsync(call, async (response, token) =>
        {
            var type = response.Content.Headers.ContentType?.MediaType;
            if (response.StatusCode != HttpStatusCode.OK || type != MediaTypes.OciIndex)
            {
                return null;
            }

            using var buffer = new BoundedMemoryStream(ManifestContent.MaxBytes, "referrers index");
            await response.Content.CopyToAsync(buffer, token).ConfigureAwait(false);
            return Json.Deserialize<ImageIndex>(buffer.ToArray(), "referrers index");
        }, cancellationToken).ConfigureAwait(false);
        var index = fromApi;
        if (index is null)
        {
            var fallback = await TryGetManifestAsync(image.WithTag(ReferrersTag(subject)), cancellationToken).ConfigureAwait(false);
            index = fallback is { IsIndex: true } ? fallback.AsIndex() : new ImageIndex();
        }

        return index.Manifests.Where(m => artifactType is null || m.ArtifactType == artifactType).ToList();
    }

    /// <summary>
    /// Attaches an artifact to <paramref name="subject"/>: pushes its blobs and a manifest whose
    /// <c>subject</c> is the image, and when the registry does not index referrers itself, adds the
    /// manifest to the fallback tag's index.
    /// </summary>
    public async Task<Descriptor> AttachReferrerAsync(ImageReference image, Descriptor subject, string artifactType,
        IReadOnlyList<(string MediaType, byte[] Content)> blobs, IReadOnlyDictionary<string, string>? annotations = null,
        CancellationToken cancellationToken = default)
    {
        var emptyConfig = "{}"u8.ToArray();
        var configDigest = Digest.Sha256(emptyConfig);
        await PushBlobAsync(image, configDigest, emptyConfig.Length, () => new MemoryStream(emptyConfig), cancellationToken: cancellationToken).ConfigureAwait(false);
        var layers = new List<Descriptor>();
        foreach (var (mediaType, content) in blobs)
        {
            var digest = Digest.Sha256(content);
            await PushBlobAsync(image, digest, content.Length, () => new MemoryStream(content), cancellationToken: cancellationToken).ConfigureAwait(false);
            layers.Add(new Descriptor { MediaType = mediaType, Digest = digest.ToString(), Size = content.Length });
        }

        var manifest = new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            ArtifactType = artifactType,
            Config = new Descriptor { MediaType = MediaTypes.OciEmpty, Digest = configDigest.ToString(), Size = emptyConfig.Length },
            Layers = layers,
            Subject = subject with { Annotations = null, Platform = null, Urls = null },
            Annotations = annotations,
        };
        var content1 = ManifestContent.From(manifest, MediaTypes.OciManifest);
        var registryIndexed = await PutManifestAsync(image with { Tag = null, Digest = content1.Digest }, content1, cancellationToken).ConfigureAwait(false);
        var descriptor = content1.Descriptor with { ArtifactType = artifactType, Annotations = annotations };
        if (!registryIndexed)
        {
            await AddToReferrersTagAsync(image, subject.ParsedDigest, descriptor, cancellationToken).ConfigureAwait(false);
        }

        return descriptor;
    }

    /// <summary>
    /// Lists <paramref name="referrer"/> in the referrers tag schema's fallback index of <paramref name="subject"/>
    /// (the index tagged <see cref="ReferrersTag"/>), for a registry that does not index referrers itself: the
    /// tagged index is read, the descriptor added unless an entry of its digest is there, and the index pushed back.
    /// </summary>
    public async Task AddToReferrersTagAsync(ImageReference image, Digest subject, Descriptor referrer, CancellationToken cancellationToken = default)
    {
        var tag = image.WithTag(ReferrersTag(subject));
        var existing = await TryGetManifestAsync(tag, cancellationToken).ConfigureAwait(false);
        var entries = existing is { IsIndex: true } ? existing.AsIndex().Manifests.ToList() : [];
        if (!entries.Any(e => e.Digest == referrer.Digest))
        {
            entries.Add(referrer);
        }

        var index = new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = entries };
        await PutManifestAsync(tag, ManifestContent.From(index, MediaTypes.OciIndex), cancellationToken).ConfigureAwait(false);
    }
}
