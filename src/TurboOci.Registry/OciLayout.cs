using System.Text.Json;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>
/// An OCI image layout folder (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>), the
/// local side of <c>image copy</c>. Tags live in index.json as <c>org.opencontainers.image.ref.name</c>.
/// </summary>
public sealed class OciLayout
{
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    public OciLayout(string directory) => Directory = Path.GetFullPath(directory);

    public string Directory { get; }

    public string BlobPath(Digest digest) => Path.Combine(Directory, "blobs", digest.Algorithm, digest.Hex);

    public bool HasBlob(Digest digest) => File.Exists(BlobPath(digest));

    /// <summary>Creates the layout files if missing.</summary>
    public void Initialize()
    {
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "blobs", "sha256"));
        var marker = Path.Combine(Directory, "oci-layout");
        if (!File.Exists(marker))
        {
            File.WriteAllText(marker, "{\"imageLayoutVersion\":\"1.0.0\"}");
        }

        if (!File.Exists(IndexPath))
        {
            WriteIndex(new ImageIndex { MediaType = MediaTypes.OciIndex });
        }
    }

    private string IndexPath => Path.Combine(Directory, "index.json");

    public ImageIndex ReadIndex()
    {
        if (!File.Exists(Path.Combine(Directory, "oci-layout")))
        {
            throw new TurboOciFormatException("OCI layout", "oci-layout", 0, $"{Directory} is not an OCI image layout (no oci-layout file)");
        }

        return Json.Deserialize<ImageIndex>(ReadBounded(IndexPath), "index.json");
    }

    /// <summary>The descriptor tagged <paramref name="tag"/>, or the only one when no tag is given.</summary>
    public Descriptor Resolve(string? tag)
    {
        var manifests = ReadIndex().Manifests;
        if (tag is null)
        {
            return manifests.Count == 1 ? manifests[0] : throw new ArgumentException($"{Directory} holds {manifests.Count} images; name one with :tag");
        }

        return manifests.LastOrDefault(m => m.Annotations?.GetValueOrDefault(RefNameAnnotation) == tag)
               ?? throw new ArgumentException($"{Directory} has no image tagged '{tag}'");
    }

    /// <summary>Reads a small blob (manifest, config), checking size and digest.</summary>
    public ManifestContent ReadManifest(Descriptor descriptor)
    {
        var bytes = ReadBounded(BlobPath(descriptor.ParsedDigest));
        descriptor.ParsedDigest.Verify(bytes, "manifest");
        var mediaType = descriptor.MediaType is { Length: > 0 } type ? type : ManifestContent.DeclaredMediaType(bytes) ?? MediaTypes.OciManifest;
        return new ManifestContent(mediaType, bytes, descriptor.ParsedDigest);
    }

    /// <summary>Stores bytes as a blob (written to a temp file and renamed, so a crash leaves no torn blob).</summary>
    public void WriteBlob(Digest digest, ReadOnlySpan<byte> content)
    {
        digest.Verify(content, "blob");
        var path = BlobPath(digest);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".partial";
        File.WriteAllBytes(temp, content.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Adds or replaces the index entry tagged <paramref name="tag"/>.</summary>
    public void Tag(Descriptor manifest, string tag)
    {
        var index = ReadIndex();
        var entries = index.Manifests.Where(m => m.Annotations?.GetValueOrDefault(RefNameAnnotation) != tag).ToList();
        var annotations = new Dictionary<string, string>(manifest.Annotations ?? new Dictionary<string, string>()) { [RefNameAnnotation] = tag };
        entries.Add(manifest with { Annotations = annotations });
        WriteIndex(index with { MediaType = MediaTypes.OciIndex, Manifests = entries });
    }

    private void WriteIndex(ImageIndex index) =>
        File.WriteAllBytes(IndexPath, JsonSerializer.SerializeToUtf8Bytes(index, Json.Options));

    private static byte[] ReadBounded(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path} is missing", path);
        }

        if (info.Length > ManifestContent.MaxBytes)
        {
            throw new TurboOciFormatException("OCI layout", Path.GetFileName(path), 0, $"{info.Length} bytes exceeds {ManifestContent.MaxBytes}");
        }

        return File.ReadAllBytes(path);
    }
}
