using System.Text.Json;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>
/// The registry-facing part of overlaybd's global config (<c>/etc/overlaybd/overlaybd.json</c>): cache
/// location, size and refill unit, the credential file and the P2P proxy. Keys and defaults as overlaybd
/// reads them; unknown keys are ignored, a known key with the wrong JSON type is rejected.
/// </summary>
public sealed record OverlaybdConfig
{
    public const string DefaultPath = "/etc/overlaybd/overlaybd.json";
    private const int MaxConfigBytes = 1024 * 1024;
    private const string Format = "overlaybd.json";

    public string CacheType { get; init; } = "file";

    public string CacheDir { get; init; } = "/opt/overlaybd/registry_cache";

    public long CacheSizeGB { get; init; } = 4;

    /// <summary>The miss refill unit in bytes: our fetch unit.</summary>
    public int RefillSize { get; init; } = 262144;

    public string CredentialFilePath { get; init; } = "/opt/overlaybd/cred.json";

    public bool P2pEnable { get; init; }

    public string P2pAddress { get; init; } = "http://localhost:9731/accelerator";

    public long CacheSizeBytes => checked(CacheSizeGB * 1024 * 1024 * 1024);

    /// <summary>Reads a config file; a missing file gives the defaults.</summary>
    public static OverlaybdConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            return new OverlaybdConfig();
        }

        if (new FileInfo(path).Length > MaxConfigBytes)
        {
            throw new TurboOciFormatException(Format, "file", 0, $"larger than {MaxConfigBytes} bytes");
        }

        return Parse(File.ReadAllBytes(path));
    }

    public static OverlaybdConfig Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            return ParseDocument(json);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Text.DecoderFallbackException)
        {
            throw new TurboOciFormatException(Format, "document", 0, $"invalid UTF-8 text: {e.Message}", e);
        }
    }

    private static OverlaybdConfig ParseDocument(ReadOnlySpan<byte> json)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new TurboOciFormatException(Format, "document", e.BytePositionInLine ?? 0, $"not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new TurboOciFormatException(Format, "document", 0, "top level is not an object");
            }

            var config = new OverlaybdConfig();
            var cache = Object(root, "cacheConfig");
            var cacheType = cache is { } c1 ? String(c1, "cacheConfig.cacheType", "cacheType") : null;
            if (cacheType is { Length: > 0 })
            {
                config = config with
                {
                    CacheType = cacheType,
                    CacheDir = String(cache!.Value, "cacheConfig.cacheDir", "cacheDir") ?? config.CacheDir,
                    CacheSizeGB = UInt(cache.Value, "cacheConfig.cacheSizeGB", "cacheSizeGB") ?? config.CacheSizeGB,
                };
            }
            else
            {
                // overlaybd's legacy top-level keys apply when cacheConfig.cacheType is empty.
                config = config with
                {
                    CacheType = String(root, "cacheType", "cacheType") ?? config.CacheType,
                    CacheDir = String(root, "registryCacheDir", "registryCacheDir") ?? config.CacheDir,
                    CacheSizeGB = UInt(root, "registryCacheSizeGB", "registryCacheSizeGB") ?? config.CacheSizeGB,
                };
            }

            if (cache is { } c2 && UInt(c2, "cacheConfig.refillSize", "refillSize") is { } refill)
            {
                if (refill < 4096 || refill > 64 * 1024 * 1024 || (refill & (refill - 1)) != 0)
                {
                    throw new TurboOciFormatException(Format, "cacheConfig.refillSize", 0, $"{refill} is not a power of two between 4 KiB and 64 MiB");
                }

                config = config with { RefillSize = (int)refill };
            }

            if (config.CacheType is not ("file" or "ocf" or "download"))
            {
                throw new TurboOciFormatException(Format, "cacheConfig.cacheType", 0, $"'{config.CacheType}' is not file, ocf or download");
            }

            var credentials = Object(root, "credentialConfig");
            var credentialPath = credentials is { } cc && String(cc, "credentialConfig.mode", "mode") is "file"
                ? String(cc, "credentialConfig.path", "path")
                : null;
            config = config with { CredentialFilePath = credentialPath ?? String(root, "credentialFilePath", "credentialFilePath") ?? config.CredentialFilePath };

            if (Object(root, "p2pConfig") is { } p2p)
            {
                config = config with
                {
                    P2pEnable = Bool(p2p, "p2pConfig.enable", "enable") ?? false,
                    P2pAddress = String(p2p, "p2pConfig.address", "address") ?? config.P2pAddress,
                };
            }

            return config;
        }
    }

    private static JsonElement? Object(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.Object ? value : throw WrongType(name, "an object")
            : null;

    private static string? String(JsonElement parent, string field, string name) =>
        parent.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw WrongType(field, "a string")
            : null;

    private static long? UInt(JsonElement parent, string field, string name) =>
        parent.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.Number && value.TryGetUInt32(out var number) ? number : throw WrongType(field, "an unsigned 32-bit number")
            : null;

    private static bool? Bool(JsonElement parent, string field, string name) =>
        parent.TryGetProperty(name, out var value)
            ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw WrongType(field, "a boolean")
            : null;

    private static TurboOciFormatException WrongType(string field, string expected) =>
        new(Format, field, 0, $"must be {expected}");
}
