using System.Text.Encodings.Web;
using System.Text.Json;
using TurboOci.Registry;

namespace TurboOci.Images.Packaging;

/// <summary>
/// The names and values a TurboOCIv1 meta image carries, as accelerated-container-image writes and its
/// snapshotter reads them (<c>pkg/label/label.go</c>, <c>pkg/version/version.go</c>, <c>cmd/convertor/builder</c>).
/// containerd copies descriptor annotations starting with <c>containerd.io/snapshot/</c> into the snapshotter's
/// labels, which is why they live on each layer descriptor.
/// </summary>
public static class TurboOciLabels
{
    public const string Version = "containerd.io/snapshot/overlaybd/version";
    public const string BlobDigest = "containerd.io/snapshot/overlaybd/blob-digest";
    public const string BlobSize = "containerd.io/snapshot/overlaybd/blob-size";
    public const string TargetDigest = "containerd.io/snapshot/overlaybd/turbo-oci/target-digest";
    public const string TargetMediaType = "containerd.io/snapshot/overlaybd/turbo-oci/target-media-type";

    /// <summary>The names of the "fastoci" era, still read by the snapshotter.</summary>
    public const string LegacyTargetDigest = "containerd.io/snapshot/overlaybd/fastoci/target-digest";
    public const string LegacyTargetMediaType = "containerd.io/snapshot/overlaybd/fastoci/target-media-type";

    /// <summary>A TurboOCIv1 meta layer (needs overlaybd ≥ 0.6.10).</summary>
    public const string TurboVersion = "0.1.0-turbo.ociv1";

    /// <summary>The deprecated earlier name of a TurboOCI meta layer, still accepted by the snapshotter.</summary>
    public const string LegacyFastOciVersion = "0.1.0-fastoci";

    /// <summary>A native overlaybd layer, such as the raw ext4_64 base layer.</summary>
    public const string NativeVersion = "0.1.0";

    /// <summary>The <c>artifactType</c> of a meta image pushed in referrer form.</summary>
    public const string ArtifactType = "application/vnd.containerd.overlaybd.turbo.v1+json";

    /// <summary>overlaybd's stock ext4_64 base layer blob as the convertor uploads it with <c>--mkfs=false</c> (a raw ZFile).</summary>
    public const string BaseLayerDigest = "sha256:c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9";
    public const long BaseLayerSize = 4_737_695;

    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>containerd's <c>images.IsDockerType</c>.</summary>
    public static bool IsDockerType(string mediaType) => mediaType.StartsWith("application/vnd.docker.", StringComparison.Ordinal);

    /// <summary>Whether a target media type says the original blob is gzip (and so a gzip index must come with it).</summary>
    public static bool IsGzipLayer(string mediaType) => mediaType is DockerLayerGzip or OciLayerGzip;

    public static string LayerMediaType(bool oci, bool gzip) => (oci, gzip) switch
    {
        (true, true) => OciLayerGzip,
        (true, false) => OciLayer,
        (false, true) => DockerLayerGzip,
        (false, false) => DockerLayer,
    };

    /// <summary>
    /// How manifests and configs are written: compact, fields in declaration order, annotations sorted (as Go's
    /// encoding/json writes maps), and no escaping of '+' in media types (readable, and what Go writes).
    /// </summary>
    public static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, MaxDepth = 64 };

    /// <summary>The annotations every overlaybd layer descriptor carries: version, and the blob's own digest and size.</summary>
    public static Dictionary<string, string> LayerAnnotations(string version, string digest, long size) => new()
    {
        [Version] = version,
        [BlobDigest] = digest,
        [BlobSize] = size.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Annotations sorted by key with ordinal comparison.</summary>
    public static IReadOnlyDictionary<string, string> Sorted(IEnumerable<KeyValuePair<string, string>> annotations) =>
        new SortedDictionary<string, string>(annotations.ToDictionary(), StringComparer.Ordinal);

    /// <summary>Serialises a manifest as we push it.</summary>
    public static ManifestContent ToContent(ImageManifest manifest)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest, Json);
        return new ManifestContent(manifest.MediaType ?? MediaTypes.OciManifest, bytes, Digest.Sha256(bytes));
    }
}
