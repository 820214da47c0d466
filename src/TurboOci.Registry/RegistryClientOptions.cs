using System.Net;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>How hard the client retries transient failures: attempts, backoff with jitter, and a total time budget.</summary>
public sealed record RetryPolicy
{
    /// <summary>Attempts per operation, the first included.</summary>
    public int MaxAttempts { get; init; } = 5;

    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>No retry starts after this much time went into one operation.</summary>
    public TimeSpan Budget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The longest Retry-After we honour; a server asking for more fails the operation instead.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Full-jitter exponential backoff: a random delay in [0, min(max, base·2^attempt)].</summary>
    public TimeSpan DelayFor(int attempt)
    {
        var ceiling = Math.Min(MaxDelay.TotalMilliseconds, BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling);
    }
}

/// <summary>Everything that decides how the client reaches registries.</summary>
public sealed record RegistryClientOptions
{
    public ICredentialProvider? Credentials { get; init; }

    /// <summary>Registries (<c>host[:port]</c>) reached over plain HTTP. Loopback addresses are too, unless <see cref="PlainHttpForLoopback"/> is off.</summary>
    public IReadOnlySet<string> InsecureRegistries { get; init; } = new HashSet<string>();

    /// <summary>Reach registries on loopback addresses (and <c>localhost</c>) over plain HTTP, as Docker does; false: TLS there too.</summary>
    public bool PlainHttpForLoopback { get; init; } = true;

    /// <summary>Per registry, mirror endpoints (<c>host[:port]</c> or <c>http(s)://host[:port]</c>) tried in order before it for pulls.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Mirrors { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Per registry, an HTTP proxy every request to it goes through (the hook for P2P distribution).</summary>
    public IReadOnlyDictionary<string, Uri> Proxies { get; init; } = new Dictionary<string, Uri>();

    /// <summary>
    /// A P2P agent (Dragonfly dfdaemon, DADI P2P proxy) blob GETs go through, as overlaybd's <c>p2pConfig.address</c>:
    /// each blob GET asks <c>{P2pAddress}/{blob URL}</c> (the registry's URL, or the storage URL it redirects to),
    /// with the Range header and, for the registry's own URL, its Authorization. A missing scheme means http,
    /// as in overlaybd. Null: blobs come straight from the registry. See <see cref="P2pAgent"/>.
    /// </summary>
    public string? P2pAddress { get; init; }

    public RetryPolicy Retry { get; init; } = new();

    /// <summary>
    /// A PEM file of certificate authorities trusted for registries' TLS certificates besides the system's
    /// (a private registry's CA, like Docker's <c>certs.d/HOST/ca.crt</c>). Null: the system roots only
    /// (which on Linux honour <c>SSL_CERT_FILE</c>/<c>SSL_CERT_DIR</c>).
    /// </summary>
    public string? CaCertificatesFile { get; init; }

    /// <summary>
    /// A client certificate (PEM) offered in TLS handshakes with registries, token realms and the P2P agent
    /// (mutual TLS), with its key in <see cref="ClientKeyFile"/>: overlaybd's <c>certConfig.certFile</c>/<c>keyFile</c>.
    /// </summary>
    public string? ClientCertificateFile { get; init; }

    /// <summary>The PEM private key of <see cref="ClientCertificateFile"/> (null: the key is in the certificate file).</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>Time allowed for one attempt, headers and body.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a redirect target for a blob is reused before asking the registry again.</summary>
    public TimeSpan RedirectCacheLifetime { get; init; } = TimeSpan.FromSeconds(60);

    public string UserAgent { get; init; } = "turbooci/" + typeof(RegistryClientOptions).Assembly.GetName().Version;

    /// <summary>Diagnostic messages; they never carry credentials or tokens.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Builds the HTTP handler for a proxy (null: direct); tests replace it.</summary>
    public Func<Uri?, HttpMessageHandler>? HandlerFactory { get; init; }

    internal bool IsPlainHttp(string registry)
    {
        if (InsecureRegistries.Contains(registry))
        {
            return true;
        }

        if (!PlainHttpForLoopback)
        {
            return false;
        }

        var host = registry.StartsWith('[') ? registry[1..registry.IndexOf(']')] : registry.Split(':')[0];
        return host == "localhost" || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
    }
}

/// <summary>A registry answered with an error, or could not be reached within the retry budget.</summary>
public class RegistryException : TurboOciException
{
    public RegistryException(string message, HttpStatusCode? status = null, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
    }

    public HttpStatusCode? Status { get; }
}

/// <summary>The registry refused our credentials (or we had none).</summary>
public sealed class RegistryAuthenticationException(string message, HttpStatusCode? status = null) : RegistryException(message, status);

/// <summary>Fetched bytes did not match their digest even after refetching.</summary>
public sealed class RangeVerificationException(string message) : TurboOciException(message);
