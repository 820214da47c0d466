using System.Collections.Concurrent;
using System.Net;
using TurboOci.Registry.Cache;

namespace TurboOci.Registry;

/// <summary>
/// A node's way to blobs that live only in a registry: overlaybd's <c>repoBlobUrl</c> + digest become
/// <see cref="RemoteBlobSource"/>s that share one client (connections, tokens) and one range cache, as all
/// devices of an overlaybd node share its registry cache. Built from an <c>overlaybd.json</c>-style config
/// (cache directory, size and refill unit, credential file) or from explicit parts.
/// </summary>
public sealed class RegistryBlobStore : IDisposable
{
    private readonly RegistryClient _client;
    private readonly bool _ownsClient;
    private readonly RemoteBlobOptions _options;

    // repoBlobUrls that say http:// for a host our client would reach over TLS get a client of their own
    // that speaks plain HTTP to exactly that host (the URL is the config's explicit choice, as in overlaybd);
    // blobs opened while the P2P agent is unreachable get one without the agent. Keyed by (host or "", direct).
    private readonly ConcurrentDictionary<(string PlainHttpHost, bool Direct), RegistryClient> _variants = new();

    // The last P2P agent check: overlaybd checks once per image, so the layers of one stack opened together
    // share one check instead of connecting once per blob.
    private AgentCheck? _agentCheck;

    /// <summary>How long one P2P agent check decides for the blobs opened after it.</summary>
    public static readonly TimeSpan AgentCheckLifetime = TimeSpan.FromSeconds(5);

    public RegistryBlobStore(RegistryClient client, RemoteBlobOptions? options = null, bool ownsClient = false)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _ownsClient = ownsClient;
        _options = options ?? new RemoteBlobOptions();
        _options.Validate();
    }

    public RemoteBlobOptions Options => _options;

    public IRangeCache? Cache => _options.Cache;

    /// <summary>
    /// The store an overlaybd node config describes: a disk cache at <c>cacheConfig.cacheDir</c> of
    /// <c>cacheSizeGB</c> filled in <c>refillSize</c> units, credentials from the credential source
    /// (<c>credentialConfig</c> or the legacy <c>credentialFilePath</c>) ahead of any in <paramref name="clientOptions"/>,
    /// blob bytes through the P2P agent of <c>p2pConfig</c> when enabled, the client certificate of
    /// <c>certConfig</c>, and <c>userAgent</c>.
    /// </summary>
    public static RegistryBlobStore FromConfig(OverlaybdConfig config, RegistryClientOptions? clientOptions = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        clientOptions ??= new RegistryClientOptions();
        var credentials = OverlaybdCredentials.For(config);
        if (credentials is not null)
        {
            clientOptions = clientOptions with
            {
                Credentials = clientOptions.Credentials is { } other ? new ChainedCredentialProvider(credentials, other) : credentials,
            };
        }

        clientOptions = config.ApplyTransportTo(clientOptions);
        var cache = new DiskRangeCache(config.CacheDir, config.CacheSizeBytes, clientOptions.Log);
        return new RegistryBlobStore(new RegistryClient(clientOptions), new RemoteBlobOptions { FetchUnit = config.RefillSize, Cache = cache },
            ownsClient: true);
    }

    /// <summary>Opens <c>repoBlobUrl/digest</c>; with <paramref name="size"/> &gt; 0 no request is made until the first read.</summary>
    public RemoteBlobSource Open(string repoBlobUrl, string digest, long size = 0) =>
        OpenAsync(repoBlobUrl, digest, size).GetAwaiter().GetResult();

    /// <remarks>
    /// With a P2P agent configured, overlaybd's choice is made here, when a blob is opened (one TCP check of the
    /// agent serves the opens of the next <see cref="AgentCheckLifetime"/>, as overlaybd checks once per image):
    /// an agent that accepts connections serves the blob's bytes and the local range cache is bypassed
    /// (overlaybd reads through the agent uncached, the agent being the node's cache); an agent that does not
    /// gets the blob read directly from the registry through the cache.
    /// </remarks>
    public async Task<RemoteBlobSource> OpenAsync(string repoBlobUrl, string digest, long size = 0, CancellationToken cancellationToken = default)
    {
        var (image, plainHttp) = ParseRepoBlobUrl(repoBlobUrl);
        if (!Digest.TryParse(digest, out var parsed))
        {
            throw new FormatException($"'{digest}' is not a blob digest (algorithm:hex)");
        }

        var viaP2p = false;
        if (_client.Options.P2pAddress is { } agent)
        {
            var check = Volatile.Read(ref _agentCheck);
            if (check is null || check.Until <= DateTimeOffset.UtcNow)
            {
                check = new AgentCheck(await P2pAgent.IsReachableAsync(agent, P2pAgent.ProbeTimeout, cancellationToken).ConfigureAwait(false),
                    DateTimeOffset.UtcNow + AgentCheckLifetime);
                Volatile.Write(ref _agentCheck, check);
            }

            viaP2p = check.Reachable;
            if (!viaP2p)
            {
                _client.Options.Log?.Invoke($"P2P agent {agent} does not accept connections: {parsed} is read from {image.Registry} directly");
            }
        }

        var plainHttpHost = plainHttp && !_client.Options.IsPlainHttp(image.Registry) ? image.Registry : "";
        var direct = _client.Options.P2pAddress is not null && !viaP2p;
        var client = plainHttpHost.Length == 0 && !direct
            ? _client
            : _variants.GetOrAdd((plainHttpHost, direct), key => new RegistryClient(_client.Options with
            {
                InsecureRegistries = key.PlainHttpHost.Length == 0
                    ? _client.Options.InsecureRegistries
                    : new HashSet<string>(_client.Options.InsecureRegistries, StringComparer.OrdinalIgnoreCase) { key.PlainHttpHost },
                P2pAddress = key.Direct ? null : _client.Options.P2pAddress,
            }));
        var options = viaP2p ? _options with { Cache = null } : _options;
        return await RemoteBlobSource.OpenAsync(client, image, parsed, size > 0 ? size : null, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Splits overlaybd's <c>repoBlobUrl</c> (<c>scheme://host[:port]/v2/&lt;repository&gt;/blobs[/]</c>) into the
    /// repository it names and whether it asks for plain HTTP.
    /// </summary>
    public static (ImageReference Image, bool PlainHttp) ParseRepoBlobUrl(string repoBlobUrl)
    {
        if (string.IsNullOrEmpty(repoBlobUrl))
        {
            throw new ArgumentException("empty repoBlobUrl: a layer that is not local needs the repository's blob URL", nameof(repoBlobUrl));
        }

        if (!Uri.TryCreate(repoBlobUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Query.Length > 0)
        {
            throw new FormatException($"repoBlobUrl '{repoBlobUrl}' is not an http(s) URL without a query");
        }

        var segments = uri.AbsolutePath.Trim('/').Split('/');
        if (segments.Length < 3 || segments[0] != "v2" || segments[^1] != "blobs" || segments.Any(segment => segment.Length == 0))
        {
            throw new FormatException($"repoBlobUrl '{repoBlobUrl}' is not of the form scheme://host/v2/<repository>/blobs");
        }

        var host = uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        if (uri.HostNameType == UriHostNameType.IPv6)
        {
            host = uri.IsDefaultPort ? $"[{uri.DnsSafeHost}]" : $"[{uri.DnsSafeHost}]:{uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        }

        var repository = WebUtility.UrlDecode(string.Join('/', segments[1..^1]));
        return (new ImageReference { Registry = host, Repository = repository }, uri.Scheme == "http");
    }

    private sealed record AgentCheck(bool Reachable, DateTimeOffset Until);

    public void Dispose()
    {
        foreach (var client in _variants.Values)
        {
            client.Dispose();
        }

        if (_ownsClient)
        {
            _client.Dispose();
        }
    }
}
