using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TurboOci.Registry;

/// <summary>
/// An OCI distribution client on HttpClient: auth (anonymous, Basic, bearer tokens), redirects that never
/// carry credentials to another host, mirrors and per-registry proxies, and retries with jittered backoff
/// on 5xx, 429 (honouring Retry-After), timeouts and connection resets, within a bounded budget.
/// Thread-safe; share one per process.
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    private const int MaxRedirects = 5;

    private readonly RegistryClientOptions _options;
    private readonly ConcurrentDictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Uri Location, DateTimeOffset Expires)> _redirects = new(StringComparer.Ordinal);
    private readonly RegistryAuthenticator _auth;
    private readonly Lazy<TrustedCertificates?> _trustedCertificates;
    private readonly Lazy<X509Certificate2?> _clientCertificate;
    private long _requests;

    public RegistryClient(RegistryClientOptions? options = null)
    {
        _options = options ?? new RegistryClientOptions();
        _trustedCertificates = new(() => _options.CaCertificatesFile is { Length: > 0 } path ? TrustedCertificates.FromPemFile(path, alsoSystemRoots: true) : null);
        _clientCertificate = new(LoadClientCertificate);
        _auth = new RegistryAuthenticator(_options, ClientFor);
    }

    public RegistryClientOptions Options => _options;

    /// <summary>HTTP requests sent to registries, mirrors and the P2P agent so far (token requests not included).</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Token requests sent to auth realms so far.</summary>
    public int TokenRequestCount => _auth.TokenRequests;

    /// <summary>What one registry call needs: where, what, with which access, and which answers are success.</summary>
    internal sealed record Call(ImageReference Image, HttpMethod Method, string PathAndQuery)
    {
        public string Actions { get; init; } = "pull";

        /// <summary>Extra repositories the token must cover (cross-repository mount).</summary>
        public IReadOnlyList<string> ExtraPullRepositories { get; init; } = [];

        public IReadOnlyList<string> Accept { get; init; } = [];

        public RangeHeaderValue? Range { get; init; }

        /// <summary>Bytes of the body already received and kept, so a retry asks only for the rest (of the range, if any).</summary>
        public Func<long>? ResumeFrom { get; init; }

        public Func<HttpContent>? Content { get; init; }

        public bool UseMirrors { get; init; }

        /// <summary>Reuse a cached redirect target (blob GETs).</summary>
        public bool CacheRedirect { get; init; }

        /// <summary>A blob GET: its bytes come through the P2P agent when <see cref="RegistryClientOptions.P2pAddress"/> is set.</summary>
        public bool ViaP2p { get; init; }

        /// <summary>Statuses handed to the consumer; anything else is an error (or a retry for 5xx/429).</summary>
        public Func<HttpStatusCode, bool> Accepts { get; init; } = status => (int)status is >= 200 and < 300;

        public string Scope => string.Join(' ',
            ExtraPullRepositories.Select(r => $"repository:{r}:pull").Prepend($"repository:{Image.Repository}:{Actions}"));

        public string Describe => $"{Method} {Image.Registry}/{Image.Repository} {PathAndQuery.Split('?')[0].Split('/').Last()}";
    }

    /// <summary>A failure worth another attempt, with the delay the server asked for if any.</summary>
    internal sealed class TransientException(string message, TimeSpan? retryAfter = null, Exception? inner = null) : Exception(message, inner)
    {
        public TimeSpan? RetryAfter { get; } = retryAfter;
    }

    /// <summary>
    /// Runs a call with auth, redirects, mirrors and retries; <paramref name="consume"/> reads the response and
    /// may throw <see cref="TransientException"/> (or an I/O error) to have the whole call retried.
    /// </summary>
    /// <remarks>
    /// Returns to its caller on the thread pool: with inline socket completions (the turbooci process turns them
    /// on) the response is read on the socket engine's own thread, and a caller that went on there to a blocking
    /// wait for another request (a synchronous block read, a stack being opened) could wait for itself.
    /// </remarks>
    internal async Task<T> ExecuteAsync<T>(Call call, Func<HttpResponseMessage, CancellationToken, Task<T>> consume, CancellationToken cancellationToken)
    {
        try
        {
            return await ExecuteOnSocketsAsync(call, consume, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await Task.Yield();
        }
    }

    private async Task<T> ExecuteOnSocketsAsync<T>(Call call, Func<HttpResponseMessage, CancellationToken, Task<T>> consume, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var attempt = 0;
        var reauthenticated = false;
        var endpoints = Endpoints(call);
        var endpointIndex = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var endpoint = endpoints[endpointIndex];
            var isMirror = endpointIndex < endpoints.Count - 1;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.AttemptTimeout);
            try
            {
                using var response = await SendAsync(call, endpoint, isMirror, timeout.Token).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.Unauthorized && !isMirror)
                {
                    // Credential providers may block (a credential server asked synchronously, a helper program):
                    // not on the socket engine's thread, where this answer may have arrived.
                    await Task.Yield();
                    if (reauthenticated || !_auth.OnUnauthorized(call.Image.Registry, call.Scope, response))
                    {
                        throw new RegistryAuthenticationException(
                            $"{call.Image.Registry} refused access to {call.Image.Repository} ({call.Actions}): authentication failed", response.StatusCode);
                    }

                    reauthenticated = true;
                    continue;
                }

                if (isMirror && !call.Accepts(response.StatusCode))
                {
                    _options.Log?.Invoke($"mirror {endpoint} answered {(int)response.StatusCode} for {call.Describe}; trying the next endpoint");
                    endpointIndex++;
                    continue;
                }

                if (IsTransient(response.StatusCode))
                {
                    throw new TransientException($"{call.Describe}: {(int)response.StatusCode} {response.ReasonPhrase}", RetryAfter(response));
                }

                if (!call.Accepts(response.StatusCode))
                {
                    throw await ErrorAsync(call, response, timeout.Token).ConfigureAwait(false);
                }

                return await consume(response, timeout.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (!isMirror && e.InnerException is System.Security.Authentication.AuthenticationException tls)
            {
                // An untrusted certificate does not get better with retries.
                throw new RegistryException(
                    $"{call.Describe}: TLS with {endpoint} failed, its certificate is not trusted ({tls.Message}); trust its CA with the CA certificates option", null, e);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsRetryable(e))
            {
                if (isMirror)
                {
                    _options.Log?.Invoke($"mirror {endpoint} failed for {call.Describe} ({e.Message}); trying the next endpoint");
                    endpointIndex++;
                    continue;
                }

                attempt++;
                var retryAfter = (e as TransientException)?.RetryAfter;
                var delay = retryAfter ?? _options.Retry.DelayFor(attempt);
                var reason = e is OperationCanceledException ? $"no answer within {_options.AttemptTimeout.TotalSeconds:0.#} s" : e.Message;
                if (attempt >= _options.Retry.MaxAttempts || clock.Elapsed + delay > _options.Retry.Budget ||
                    (retryAfter is { } asked && asked > _options.Retry.MaxRetryAfter))
                {
                    throw new RegistryException($"{call.Describe} failed after {attempt} attempt(s) in {clock.Elapsed.TotalSeconds:0.0} s: {reason}", null, e);
                }

                _options.Log?.Invoke($"retry {attempt}/{_options.Retry.MaxAttempts - 1} of {call.Describe} in {delay.TotalMilliseconds:0} ms: {reason}");
                _redirects.Clear();
                _p2pRoutes.Clear();
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || (int)status >= 500;

    private static bool IsRetryable(Exception e) =>
        e is TransientException or HttpRequestException or IOException or SocketException or OperationCanceledException;

    private static TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero,
            _ => null,
        };

    private List<string> Endpoints(Call call)
    {
        var upstream = BaseUrl(call.Image.Endpoint, call.Image.Registry);
        if (!call.UseMirrors || !_options.Mirrors.TryGetValue(call.Image.Registry, out var mirrors))
        {
            return [upstream];
        }

        return [.. mirrors.Select(m => m.Contains("://", StringComparison.Ordinal) ? m.TrimEnd('/') : BaseUrl(m, m)), upstream];
    }

    private string BaseUrl(string endpoint, string registry) => (_options.IsPlainHttp(registry) ? "http://" : "https://") + endpoint;

    private async Task<HttpResponseMessage> SendAsync(Call call, string endpoint, bool isMirror, CancellationToken cancellationToken)
    {
        var original = new Uri(endpoint + call.PathAndQuery);
        var target = original;
        var cacheKey = original.AbsoluteUri;
        if (call.CacheRedirect && _redirects.TryGetValue(cacheKey, out var cached) && cached.Expires > DateTimeOffset.UtcNow)
        {
            target = cached.Location;
        }

        // Mirrors get no credentials of the upstream registry.
        var authorization = isMirror ? null : await _auth.AuthorizationAsync(call.Image.Registry, call.Scope, cancellationToken).ConfigureAwait(false);
        var client = ClientFor(_options.Proxies.GetValueOrDefault(call.Image.Registry));
        if (call.ViaP2p && _options.P2pAddress is { } agent)
        {
            return await SendViaP2pAsync(call, original, agent, authorization, client, cancellationToken).ConfigureAwait(false);
        }

        for (var hop = 0; ; hop++)
        {
            using var request = NewRequest(call, target, hop);

            // Credentials go only to the host we were asked to talk to, never to a redirect target elsewhere.
            if (authorization is not null && SameOrigin(target, original))
            {
                request.Headers.Authorization = authorization;
            }

            Interlocked.Increment(ref _requests);
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if ((call.Method == HttpMethod.Get || call.Method == HttpMethod.Head) && RedirectTarget(call, response, target, hop) is { } next)
            {
                if (call.CacheRedirect)
                {
                    _redirects[cacheKey] = (next, DateTimeOffset.UtcNow + _options.RedirectCacheLifetime);
                }

                target = next;
                continue;
            }

            if (target != original && !response.IsSuccessStatusCode)
            {
                _redirects.TryRemove(cacheKey, out _);
            }

            return response;
        }
    }

    /// <summary>A request for one hop of a call: user agent, accepted types, the (rest of the) range, and the body on the first hop.</summary>
    private HttpRequestMessage NewRequest(Call call, Uri target, int hop)
    {
        var request = new HttpRequestMessage(call.Method, target);
        request.Headers.UserAgent.ParseAdd(_options.UserAgent);
        foreach (var type in call.Accept)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }

        request.Headers.Range = call.ResumeFrom?.Invoke() is > 0 and var resume ? ResumedRange(call.Range, resume) : call.Range;
        if (call.Content is not null && hop == 0)
        {
            request.Content = call.Content();
        }

        return request;
    }

    /// <summary>
    /// Where a redirect answer points (the response is then disposed), or null when it is no redirect. Too
    /// many hops, or a target that is not http(s), fail the call.
    /// </summary>
    private static Uri? RedirectTarget(Call call, HttpResponseMessage response, Uri from, int hop)
    {
        if ((int)response.StatusCode is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } location)
        {
            return null;
        }

        var next = location.IsAbsoluteUri ? location : new Uri(from, location);
        response.Dispose();
        if (hop >= MaxRedirects || next.Scheme is not ("http" or "https"))
        {
            throw new RegistryException($"{call.Describe}: too many or unsupported redirects");
        }

        return next;
    }

    /// <summary>The rest of a range (or of the whole blob) after <paramref name="received"/> bytes of it arrived.</summary>
    private static RangeHeaderValue ResumedRange(RangeHeaderValue? range, long received) =>
        range?.Ranges.FirstOrDefault() is { From: { } from } item ? new RangeHeaderValue(from + received, item.To) : new RangeHeaderValue(received, null);

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private HttpClient ClientFor(Uri? proxy) =>
        _clients.GetOrAdd(proxy?.AbsoluteUri ?? "", _ =>
        {
            var handler = _options.HandlerFactory?.Invoke(proxy) ?? CreateHandler(proxy);
            return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        });

    private SocketsHttpHandler CreateHandler(Uri? proxy)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = proxy is not null,
            Proxy = proxy is null ? null : new WebProxy(proxy),
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 64,
            ConnectTimeout = TimeSpan.FromSeconds(15),
        };
        if (_trustedCertificates.Value is { } trusted)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = trusted.Validate;
        }

        if (_clientCertificate.Value is { } certificate)
        {
            handler.SslOptions.ClientCertificates = [certificate];
        }

        return handler;
    }

    private X509Certificate2? LoadClientCertificate()
    {
        if (_options.ClientCertificateFile is not { Length: > 0 } path)
        {
            return null;
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(path, _options.ClientKeyFile is { Length: > 0 } key ? key : null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new RegistryException($"client certificate {path}: {e.Message}", null, e);
        }
    }

    private static async Task<RegistryException> ErrorAsync(Call call, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        // The distribution error body names the problem ("BLOB_UNKNOWN", "MANIFEST_INVALID"); keep it short.
        var detail = "";
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            detail = body.Length > 300 ? body[..300] + "..." : body;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
        }

        var message = $"{call.Describe}: {(int)response.StatusCode} {response.ReasonPhrase}{(detail.Length > 0 ? ": " + detail.Trim() : "")}";
        return response.StatusCode is HttpStatusCode.Forbidden
            ? new RegistryAuthenticationException(message, response.StatusCode)
            : new RegistryException(message, response.StatusCode);
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }

        _clients.Clear();
    }
}
