using System.Globalization;
using CommandLine;
using TurboOci.Registry;
using TurboOci.Registry.Cache;

namespace TurboOci.Cli.Commands.Registry;

/// <summary>Options every registry verb shares: credentials, transport, config and cache.</summary>
public abstract class RegistryCommandBase
{
    [Option("config", HelpText = "overlaybd-style global config (cacheConfig, credentialFilePath/credentialConfig, p2pConfig, certConfig, userAgent). Default: /etc/overlaybd/overlaybd.json when it exists.")]
    public string? ConfigPath { get; set; }

    [Option("username", HelpText = "Registry user name; the password is read from stdin (--password-stdin).")]
    public string? Username { get; set; }

    [Option("password-stdin", HelpText = "Read the password for --username from the first line of stdin (never pass secrets as arguments).")]
    public bool PasswordStdin { get; set; }

    [Option("docker-config", HelpText = "Docker config.json with auths/credHelpers/credsStore. Default: $DOCKER_CONFIG/config.json or ~/.docker/config.json.")]
    public string? DockerConfig { get; set; }

    [Option("insecure", Separator = ',', HelpText = "Registries (host:port, comma separated) to reach over plain HTTP. Loopback registries always are.")]
    public IEnumerable<string> Insecure { get; set; } = [];

    [Option("ca-file", HelpText = "PEM file of certificate authorities to trust for registries' TLS certificates, besides the system's (a private registry's CA).")]
    public string? CaFile { get; set; }

    [Option("mirror", Separator = ',', HelpText = "Pull mirrors as REGISTRY=MIRROR (comma separated), tried in order before the registry.")]
    public IEnumerable<string> MirrorSpecs { get; set; } = [];

    [Option("proxy", Separator = ',', HelpText = "HTTP forward proxies per registry as REGISTRY=URL (comma separated). For an overlaybd-style P2P agent use --p2p.")]
    public IEnumerable<string> ProxySpecs { get; set; } = [];

    [Option("p2p", HelpText = "P2P agent (Dragonfly dfdaemon, DADI P2P proxy) that serves blob bytes, in overlaybd's p2pConfig.address form (host:port/path or http(s)://host:port/path): "
        + "each blob GET asks ADDRESS/<blob URL>, and the range cache is not used, as in overlaybd. Default: p2pConfig of --config when enabled. Ignored when nothing listens there.")]
    public string? P2pAddress { get; set; }

    [Option("retries", Default = 5, HelpText = "Attempts per request on 5xx, 429, timeouts and resets (with jittered backoff).")]
    public int Retries { get; set; }

    [Option("timeout", Default = 60, HelpText = "Seconds allowed for one attempt of one request.")]
    public int TimeoutSeconds { get; set; }

    [Option("verbose", HelpText = "Log retries, redirects and token requests on stderr (never secrets).")]
    public bool Verbose { get; set; }

    internal OverlaybdConfig LoadConfig()
    {
        var path = ConfigPath ?? OverlaybdConfig.DefaultPath;
        if (ConfigPath is not null && !File.Exists(path))
        {
            throw new FileNotFoundException($"config {path} does not exist", path);
        }

        return OverlaybdConfig.Load(path);
    }

    internal RegistryClient CreateClient()
    {
        var config = LoadConfig();
        var providers = new List<ICredentialProvider>();
        if (Username is not null)
        {
            var password = PasswordStdin ? Console.In.ReadLine() ?? "" : throw new ArgumentException("--username needs --password-stdin");
            providers.Add(new StaticCredentialProvider(new RegistryCredential(Username, password)));
        }

        providers.Add(new DockerConfigCredentialProvider(DockerConfig ?? DockerConfigCredentialProvider.DefaultPath));
        // The node config's credential source: its credential file, or an http/https/uds credential server.
        if (OverlaybdCredentials.For(config) is { } nodeCredentials)
        {
            providers.Add(nodeCredentials);
        }

        Action<string>? log = Verbose ? line => Console.Error.WriteLine($"turbooci: {line}") : null;
        var options = config.ApplyTransportTo(new RegistryClientOptions
        {
            Credentials = new ChainedCredentialProvider([.. providers]),
            InsecureRegistries = Insecure.ToHashSet(StringComparer.Ordinal),
            CaCertificatesFile = CaFile,
            Mirrors = ParsePairs(MirrorSpecs, "--mirror").GroupBy(p => p.Key).ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Select(p => p.Value).ToList()),
            Proxies = ParsePairs(ProxySpecs, "--proxy").ToDictionary(p => p.Key, p => new Uri(p.Value)),
            Retry = new RetryPolicy { MaxAttempts = Math.Max(1, Retries) },
            AttemptTimeout = TimeSpan.FromSeconds(Math.Max(1, TimeoutSeconds)),
            Log = log,
        });
        if (P2pAddress is not null)
        {
            options = options with { P2pAddress = P2pAddress };
        }

        // As overlaybd: an agent that does not accept connections is not used; blobs come from the registry.
        if (options.P2pAddress is { } agent && !P2pAgent.IsReachableAsync(agent, P2pAgent.ProbeTimeout).GetAwaiter().GetResult())
        {
            log?.Invoke($"P2P agent {agent} does not accept connections: reading from registries directly");
            options = options with { P2pAddress = null };
        }

        return new RegistryClient(options);
    }

    private static IEnumerable<KeyValuePair<string, string>> ParsePairs(IEnumerable<string> specs, string option) =>
        specs.Select(spec => spec.Split('=', 2) is [var key, var value] && key.Length > 0 && value.Length > 0
            ? new KeyValuePair<string, string>(key, value)
            : throw new ArgumentException($"{option} wants REGISTRY=VALUE, got '{spec}'"));
}

/// <summary>Options of the verbs that use the local range cache.</summary>
public abstract class CacheCommandBase : RegistryCommandBase
{
    [Option("cache-dir", HelpText = "Range cache folder. Default: cacheConfig.cacheDir from --config when that file exists, else ~/.cache/turbooci/registry.")]
    public string? CacheDir { get; set; }

    [Option("cache-size", HelpText = "Cache capacity, e.g. 512M, 4G. Default: cacheConfig.cacheSizeGB (4G).")]
    public string? CacheSize { get; set; }

    internal DiskRangeCache OpenCache(Action<string>? log = null)
    {
        var config = LoadConfig();
        var configExists = File.Exists(ConfigPath ?? OverlaybdConfig.DefaultPath);
        var directory = CacheDir ?? (configExists
            ? config.CacheDir
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "turbooci", "registry"));
        var capacity = CacheSize is null ? config.CacheSizeBytes : RegistryCommandSupport.ParseSize(CacheSize, "--cache-size");
        return new DiskRangeCache(directory, capacity, log);
    }
}

internal static class RegistryCommandSupport
{
    public const string ImageGroupHelp = "Inspect OCI images in registries and copy them between registries and OCI layouts.";
    public const string BlobGroupHelp = "Read blobs straight from a registry: whole and digest-checked, or byte ranges through the local cache.";
    public const string CacheGroupHelp = "Look after the node's registry range cache (size, contents, integrity).";

    /// <summary>"123", "64K", "512M", "4G", "1T" (binary multiples).</summary>
    public static long ParseSize(string text, string option)
    {
        var value = text.Trim();
        long multiplier = 1;
        if (value.Length > 0 && char.IsAsciiLetter(value[^1]))
        {
            multiplier = char.ToUpperInvariant(value[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                'T' => 1L << 40,
                _ => throw new ArgumentException($"{option}: unknown size suffix in '{text}' (use K, M, G or T)"),
            };
            value = value[..^1];
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            throw new ArgumentException($"{option}: '{text}' is not a size");
        }

        return checked(number * multiplier);
    }

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}
