using System.Text.Json;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>
/// The registry-facing part of overlaybd's global config (<c>/etc/overlaybd/overlaybd.json</c>): cache
/// location, size and refill unit, the credential source, the P2P agent, the client certificate and the
/// user agent. Keys and defaults as overlaybd reads them; keys outside the registry path (logging, audit,
/// exporter, background download, ...) are ignored, a known key with the wrong JSON type is rejected.
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

    /// <summary>The credential file in <c>file</c> mode (<c>credentialConfig.path</c>, or the legacy <c>credentialFilePath</c>).</summary>
    public string CredentialFilePath { get; init; } = "/opt/overlaybd/cred.json";

    /// <summary><c>file</c>, <c>http</c>, <c>https</c>, <c>uds</c>, or <c>none</c> (an unknown mode or an empty path means no credentials, as in overlaybd).</summary>
    public string CredentialMode { get; init; } = "file";

    /// <summary>For http/https/uds: the credential server (<c>host:port/path</c>, <c>https://...</c>, or a socket path).</summary>
    public string CredentialServer { get; init; } = "";

    public int CredentialTimeoutSeconds { get; init; } = 1;

    /// <summary>For https: client certificate and key (PEM) for mTLS, and a CA file that replaces the system roots.</summary>
    public string CredentialClientCertPath { get; init; } = "";

    public string CredentialClientKeyPath { get; init; } = "";

    public string CredentialServerCaPath { get; init; } = "";

    /// <summary><c>p2pConfig.enable</c>: blob bytes come through the P2P agent at <see cref="P2pAddress"/> (see <see cref="P2pAgent"/>).</summary>
    public bool P2pEnable { get; init; }

    /// <summary><c>p2pConfig.address</c>, overlaybd's default when absent; checked only when P2P is enabled.</summary>
    public string P2pAddress { get; init; } = "http://localhost:9731/accelerator";

    /// <summary><c>certConfig.certFile</c>: a PEM client certificate for registries' TLS (used only with <see cref="KeyFile"/>, as in overlaybd).</summary>
    public string CertFile { get; init; } = "";

    /// <summary><c>certConfig.keyFile</c>: the PEM key of <see cref="CertFile"/>.</summary>
    public string KeyFile { get; init; } = "";

    /// <summary><c>userAgent</c>: the User-Agent of registry requests; null keeps the client's own.</summary>
    public string? UserAgent { get; init; }

    public long CacheSizeBytes => checked(CacheSizeGB * 1024 * 1024 * 1024);

    /// <summary>
    /// The config's transport keys applied to client options: <c>p2pConfig</c> when enabled (see <see cref="P2pAgent"/>),
    /// <c>userAgent</c>, and <c>certConfig</c> when both files are named (overlaybd ignores one alone).
    /// </summary>
    public RegistryClientOptions ApplyTransportTo(RegistryClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (P2pEnable)
        {
            options = options with { P2pAddress = P2pAddress };
        }

        if (UserAgent is { } userAgent)
        {
            options = options with { UserAgent = userAgent };
        }

        if (CertFile.Length > 0 && KeyFile.Length > 0)
        {
            options = options with { ClientCertificateFile = CertFile, ClientKeyFile = KeyFile };
        }

        return options;
    }

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

            config = ReadCredentialConfig(root, config);

            if (Object(root, "p2pConfig") is { } p2p)
            {
                config = config with
                {
                    P2pEnable = Bool(p2p, "p2pConfig.enable", "enable") ?? false,
                    P2pAddress = String(p2p, "p2pConfig.address", "address") ?? config.P2pAddress,
                };
                if (config.P2pEnable)
                {
                    try
                    {
                        P2pAgent.Normalize(config.P2pAddress);
                    }
                    catch (FormatException e)
                    {
                        throw new TurboOciFormatException(Format, "p2pConfig.address", 0, e.Message, e);
                    }
                }
            }

            if (Object(root, "certConfig") is { } cert)
            {
                config = config with
                {
                    CertFile = String(cert, "certConfig.certFile", "certFile") ?? "",
                    KeyFile = String(cert, "certConfig.keyFile", "keyFile") ?? "",
                };
            }

            if (String(root, "userAgent", "userAgent") is { Length: > 0 } userAgent)
            {
                using var probe = new HttpRequestMessage();
                if (!probe.Headers.UserAgent.TryParseAdd(userAgent))
                {
                    throw new TurboOciFormatException(Format, "userAgent", 0, $"'{userAgent}' is not a valid User-Agent (product[/version] tokens)");
                }

                config = config with { UserAgent = userAgent };
            }

            return config;
        }
    }

    /// <summary>
    /// <c>credentialConfig</c> as overlaybd reads it: an empty mode falls back to the legacy
    /// <c>credentialFilePath</c> in file mode; a known mode with an empty path, or an unknown mode, means no credentials.
    /// </summary>
    private static OverlaybdConfig ReadCredentialConfig(JsonElement root, OverlaybdConfig config)
    {
        var legacyPath = String(root, "credentialFilePath", "credentialFilePath") ?? config.CredentialFilePath;
        if (Object(root, "credentialConfig") is not { } cc || String(cc, "credentialConfig.mode", "mode") is not { Length: > 0 } mode)
        {
            return config with { CredentialMode = "file", CredentialFilePath = legacyPath };
        }

        var path = String(cc, "credentialConfig.path", "path") ?? "";
        if (mode is not ("file" or "http" or "https" or "uds") || path.Length == 0)
        {
            return config with { CredentialMode = "none", CredentialFilePath = "" };
        }

        var timeout = Int(cc, "credentialConfig.timeout", "timeout") ?? 1;
        if (timeout <= 0 || timeout > 3600)
        {
            throw new TurboOciFormatException(Format, "credentialConfig.timeout", 0, $"{timeout} is not between 1 and 3600 seconds");
        }

        if (mode == "https" && !path.StartsWith("https://", StringComparison.Ordinal))
        {
            throw new TurboOciFormatException(Format, "credentialConfig.path", 0, "https mode needs a path that starts with https://");
        }

        return config with
        {
            CredentialMode = mode,
            CredentialFilePath = mode == "file" ? path : "",
            CredentialServer = mode == "file" ? "" : path,
            CredentialTimeoutSeconds = timeout,
            CredentialClientCertPath = String(cc, "credentialConfig.client_cert_path", "client_cert_path") ?? "",
            CredentialClientKeyPath = String(cc, "credentialConfig.client_key_path", "client_key_path") ?? "",
            CredentialServerCaPath = String(cc, "credentialConfig.server_ca_path", "server_ca_path") ?? "",
        };
    }

    private static int? Int(JsonElement parent, string field, string name) =>
        parent.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number : throw WrongType(field, "a 32-bit integer")
            : null;

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
