using System.Text.Json;

namespace TurboOci.Testing.Tar;

/// <summary>A layer blob written to disk, with the digests an OCI manifest and config need.</summary>
/// <param name="Digest">"sha256:..." of the blob as stored (compressed).</param>
/// <param name="DiffId">"sha256:..." of the uncompressed tar.</param>
public sealed record LayerBlob(string Path, string Digest, string DiffId, long Size, long UncompressedSize, LayerCompression Compression)
{
    public string MediaType => LayerCompressor.MediaType(Compression);

    /// <summary>Writes <paramref name="layer"/> to <paramref name="path"/>, compressed, hashing as it streams.</summary>
    public static LayerBlob Write(TarLayerBuilder layer, string path, LayerCompression compression)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var compressed = new HashingStream(file);
        HashingStream? uncompressed = null;
        LayerCompressor.Compress(
            output =>
            {
                uncompressed = new HashingStream(output);
                layer.WriteTo(uncompressed);
            },
            compressed,
            compression);
        using (uncompressed)
        {
            return new LayerBlob(path, compressed.Digest, uncompressed!.Digest, compressed.BytesWritten, uncompressed.BytesWritten, compression);
        }
    }
}

/// <summary>An image written as an OCI image layout.</summary>
public sealed record OciImage(string LayoutPath, string Tag, string ManifestDigest, string ConfigDigest, IReadOnlyList<LayerBlob> Layers)
{
    /// <summary>The reference umoci and skopeo take: "&lt;layout&gt;:&lt;tag&gt;".</summary>
    public string Reference => $"{LayoutPath}:{Tag}";

    /// <summary>The path of a blob inside the layout.</summary>
    public string BlobPath(string digest) => OciLayout.BlobPath(LayoutPath, digest);
}

/// <summary>
/// Writes OCI image layouts (oci-layout, index.json, blobs/sha256/...) from generated layers, so that
/// umoci, skopeo and our own code read the same image.
/// </summary>
public static class OciLayout
{
    public const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string ConfigMediaType = "application/vnd.oci.image.config.v1+json";
    public const string IndexMediaType = "application/vnd.oci.image.index.v1+json";

    /// <summary>Writes every layer (compressed) and the image's config, manifest and index into <paramref name="layoutDir"/>.</summary>
    public static OciImage Write(string layoutDir, IReadOnlyList<TarLayerBuilder> layers, LayerCompression compression, string tag = "latest")
    {
        var blobs = CreateLayout(layoutDir);
        var written = new List<LayerBlob>();
        foreach (var layer in layers)
        {
            var temp = Path.Combine(blobs, $"tmp-{Guid.NewGuid():N}");
            var blob = LayerBlob.Write(layer, temp, compression);
            var final = BlobPath(layoutDir, blob.Digest);
            File.Move(temp, final, overwrite: true);
            written.Add(blob with { Path = final });
        }

        return WriteImage(layoutDir, written, tag);
    }

    /// <summary>Writes an image from layer blobs already on disk (copied into the layout).</summary>
    public static OciImage Write(string layoutDir, IReadOnlyList<LayerBlob> layers, string tag = "latest")
    {
        CreateLayout(layoutDir);
        var copied = new List<LayerBlob>();
        foreach (var layer in layers)
        {
            var final = BlobPath(layoutDir, layer.Digest);
            if (Path.GetFullPath(layer.Path) != Path.GetFullPath(final))
            {
                File.Copy(layer.Path, final, overwrite: true);
            }

            copied.Add(layer with { Path = final });
        }

        return WriteImage(layoutDir, copied, tag);
    }

    /// <summary>The path of blob <paramref name="digest"/> ("sha256:...") in a layout.</summary>
    public static string BlobPath(string layoutDir, string digest)
    {
        const string prefix = "sha256:";
        if (!digest.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new ArgumentException($"not a sha256 digest: {digest}", nameof(digest));
        }

        return Path.Combine(layoutDir, "blobs", "sha256", digest[prefix.Length..]);
    }

    private static string CreateLayout(string layoutDir)
    {
        var blobs = Path.Combine(layoutDir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        File.WriteAllText(Path.Combine(layoutDir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        return blobs;
    }

    private static OciImage WriteImage(string layoutDir, IReadOnlyList<LayerBlob> layers, string tag)
    {
        var config = Json(writer =>
        {
            writer.WriteString("created", "2023-11-14T22:13:20Z");
            writer.WriteString("architecture", "amd64");
            writer.WriteString("os", "linux");
            writer.WriteStartObject("config");
            writer.WriteStartArray("Env");
            writer.WriteStringValue("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteStartObject("rootfs");
            writer.WriteString("type", "layers");
            writer.WriteStartArray("diff_ids");
            foreach (var layer in layers)
            {
                writer.WriteStringValue(layer.DiffId);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        });
        var configDigest = WriteBlob(layoutDir, config);

        var manifest = Json(writer =>
        {
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", ManifestMediaType);
            writer.WritePropertyName("config");
            WriteDescriptor(writer, ConfigMediaType, configDigest, config.Length);
            writer.WriteStartArray("layers");
            foreach (var layer in layers)
            {
                WriteDescriptor(writer, layer.MediaType, layer.Digest, layer.Size);
            }

            writer.WriteEndArray();
        });
        var manifestDigest = WriteBlob(layoutDir, manifest);

        var index = Json(writer =>
        {
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", IndexMediaType);
            writer.WriteStartArray("manifests");
            WriteDescriptor(writer, ManifestMediaType, manifestDigest, manifest.Length, ("org.opencontainers.image.ref.name", tag));
            writer.WriteEndArray();
        });
        File.WriteAllBytes(Path.Combine(layoutDir, "index.json"), index);
        return new OciImage(layoutDir, tag, manifestDigest, configDigest, layers);
    }

    private static void WriteDescriptor(Utf8JsonWriter writer, string mediaType, string digest, long size, (string Key, string Value)? annotation = null)
    {
        writer.WriteStartObject();
        writer.WriteString("mediaType", mediaType);
        writer.WriteString("digest", digest);
        writer.WriteNumber("size", size);
        if (annotation is var (key, value))
        {
            writer.WriteStartObject("annotations");
            writer.WriteString(key, value);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static byte[] Json(Action<Utf8JsonWriter> writeProperties)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writeProperties(writer);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static string WriteBlob(string layoutDir, byte[] content)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
        File.WriteAllBytes(BlobPath(layoutDir, digest), content);
        return digest;
    }
}
