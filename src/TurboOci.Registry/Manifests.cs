using System.Text.Json;
using System.Text.Json.Serialization;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>The media types the client understands.</summary>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>Everything a manifest GET accepts, manifests and indexes, OCI and Docker.</summary>
    public static readonly string[] AllManifests = [OciManifest, OciIndex, DockerManifest, DockerManifestList];

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;
}

/// <summary>An OCI platform.</summary>
public sealed record Platform
{
    [JsonPropertyName("architecture")]
    public string Architecture { get; init; } = "";

    [JsonPropertyName("os")]
    public string Os { get; init; } = "";

    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    /// <summary>Parses <c>os/arch[/variant]</c>.</summary>
    public static Platform Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrEmpty))
        {
            throw new FormatException($"platform must be os/arch[/variant], got '{text}'");
        }

        return new Platform { Os = parts[0], Architecture = parts[1], Variant = parts.Length == 3 ? parts[2] : null };
    }

    /// <summary>The platform this process runs on, in OCI's spelling.</summary>
    public static Platform Current => new()
    {
        Os = "linux",
        Architecture = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            System.Runtime.InteropServices.Architecture.Arm => "arm",
            System.Runtime.InteropServices.Architecture.X86 => "386",
            _ => "amd64",
        },
    };

    /// <summary>Whether a descriptor's platform satisfies this one (a missing variant matches any).</summary>
    public bool Accepts(Platform? candidate) =>
        candidate is not null && candidate.Os == Os && candidate.Architecture == Architecture &&
        (Variant is null || candidate.Variant == Variant);
}

/// <summary>An OCI content descriptor.</summary>
public sealed record Descriptor
{
    [JsonPropertyName("mediaType")]
    public string MediaType { get; init; } = "";

    [JsonPropertyName("digest")]
    public string Digest { get; init; } = "";

    [JsonPropertyName("size")]
    public long Size { get; init; }

    [JsonPropertyName("urls")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Urls { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    [JsonPropertyName("platform")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Platform? Platform { get; init; }

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }

    /// <summary>The digest, parsed and checked.</summary>
    public Digest ParsedDigest => Registry.Digest.TryParse(Digest, out var d)
        ? d
        : throw new TurboOciFormatException("OCI", "descriptor.digest", 0, $"unsupported or malformed digest '{Digest}'");
}

/// <summary>An image manifest (OCI or Docker schema 2): config plus layers, optionally a subject.</summary>
public sealed record ImageManifest
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; }

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }

    [JsonPropertyName("config")]
    public Descriptor Config { get; init; } = new();

    [JsonPropertyName("layers")]
    public IReadOnlyList<Descriptor> Layers { get; init; } = [];

    [JsonPropertyName("subject")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Descriptor? Subject { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>An image index (OCI) or manifest list (Docker).</summary>
public sealed record ImageIndex
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; }

    [JsonPropertyName("manifests")]
    public IReadOnlyList<Descriptor> Manifests { get; init; } = [];

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>A manifest or index as fetched: its exact bytes (the digest covers them), media type and digest.</summary>
public sealed record ManifestContent(string MediaType, ReadOnlyMemory<byte> Bytes, Digest Digest)
{
    /// <summary>The largest manifest we accept: distribution itself caps manifests at 4 MiB.</summary>
    public const int MaxBytes = 4 * 1024 * 1024;

    public bool IsIndex => MediaTypes.IsIndex(MediaType);

    public Descriptor Descriptor => new() { MediaType = MediaType, Digest = Digest.ToString(), Size = Bytes.Length };

    public ImageManifest AsManifest()
    {
        if (IsIndex)
        {
            throw new InvalidDataException($"{Digest} is an index ({MediaType}), not a manifest");
        }

        var manifest = Json.Deserialize<ImageManifest>(Bytes, "manifest");
        if (manifest.Config is null || manifest.Layers is null || manifest.Layers.Any(l => l is null))
        {
            throw new TurboOciFormatException("OCI", "manifest", 0, "config or layers missing or null");
        }

        return manifest;
    }

    public ImageIndex AsIndex()
    {
        if (!IsIndex)
        {
            throw new InvalidDataException($"{Digest} is a manifest ({MediaType}), not an index");
        }

        var index = Json.Deserialize<ImageIndex>(Bytes, "index");
        if (index.Manifests is null || index.Manifests.Any(m => m is null))
        {
            throw new TurboOciFormatException("OCI", "index.manifests", 0, "missing or null entries");
        }

        return index;
    }

    /// <summary>Serialises a manifest or index the way we push it (compact, stable field order).</summary>
    public static ManifestContent From<T>(T document, string mediaType)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(document, Json.Options);
        return new ManifestContent(mediaType, bytes, Registry.Digest.Sha256(bytes));
    }

    /// <summary>The media type a document declares in its own <c>mediaType</c> field, if any.</summary>
    public static string? DeclaredMediaType(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            if (document.RootElement.TryGetProperty("mediaType", out var type) && type.ValueKind == JsonValueKind.String)
            {
                return type.GetString();
            }

            return document.RootElement.TryGetProperty("manifests", out _) ? MediaTypes.OciIndex : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or System.Text.DecoderFallbackException)
        {
            return null;
        }
    }
}

/// <summary>JSON settings shared by every document the client reads or writes.</summary>
internal static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        MaxDepth = 32,
    };

    public static T Deserialize<T>(ReadOnlyMemory<byte> bytes, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(bytes.Span, Options) ?? throw new TurboOciFormatException("OCI", what, 0, "document is null");
        }
        catch (JsonException e)
        {
            throw new TurboOciFormatException("OCI", what, e.BytePositionInLine ?? 0, $"invalid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Text.DecoderFallbackException)
        {
            throw new TurboOciFormatException("OCI", what, 0, $"invalid UTF-8 text: {e.Message}", e);
        }
    }
}
