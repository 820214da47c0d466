using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TurboOci.Registry;

/// <summary>
/// Turns <c>WWW-Authenticate</c> challenges into Authorization headers: Basic from the credential provider,
/// or bearer tokens from the challenge's realm, cached per registry and scope until shortly before they
/// expire. Once a registry's realm is known, tokens for new scopes are fetched before the first request,
/// so a steady stream of reads costs no 401 round trips. Never logs a secret.
/// </summary>
internal sealed class RegistryAuthenticator
{
    private const int MaxTokenResponseBytes = 1024 * 1024;
    private static readonly TimeSpan s_expirySlack = TimeSpan.FromSeconds(10);

    private readonly RegistryClientOptions _options;
    private readonly Func<Uri?, HttpClient> _clientFor;
    private readonly ConcurrentDictionary<string, Challenge> _challenges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Registry, string Scope), CachedToken> _tokens = new();
    private readonly ConcurrentDictionary<(string Registry, string Scope), SemaphoreSlim> _tokenLocks = new();
    private int _tokenRequests;

    public RegistryAuthenticator(RegistryClientOptions options, Func<Uri?, HttpClient> clientFor)
    {
        _options = options;
        _clientFor = clientFor;
    }

    /// <summary>How many tokens were requested from realms, for tests and stats.</summary>
    public int TokenRequests => Volatile.Read(ref _tokenRequests);

    /// <summary>The header to send for this registry and scope, fetching a token if the realm is known.</summary>
    public async ValueTask<AuthenticationHeaderValue?> AuthorizationAsync(string registry, string scope, CancellationToken cancellationToken)
    {
        if (!_challenges.TryGetValue(registry, out var challenge))
        {
            return null;
        }

        if (challenge.Scheme == "basic")
        {
            return BasicHeader(registry);
        }

        if (_tokens.TryGetValue((registry, scope), out var cached) && cached.Expires > DateTimeOffset.UtcNow)
        {
            return new AuthenticationHeaderValue("Bearer", cached.Token);
        }

        var token = await FetchTokenAsync(registry, challenge, scope, cancellationToken).ConfigureAwait(false);
        return new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary>
    /// Learns from a 401: remembers the scheme and realm, drops the rejected token. Returns false when
    /// retrying cannot help (unknown scheme, or Basic without credentials).
    /// </summary>
    public bool OnUnauthorized(string registry, string scope, HttpResponseMessage response)
    {
        _tokens.TryRemove((registry, scope), out _);
        foreach (var header in response.Headers.WwwAuthenticate)
        {
            var scheme = header.Scheme.ToLowerInvariant();
            if (scheme == "bearer")
            {
                var parameters = ParseParameters(header.Parameter ?? "");
                if (!parameters.TryGetValue("realm", out var realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) ||
                    realmUri.Scheme is not ("http" or "https"))
                {
                    throw new RegistryAuthenticationException($"{registry} sent a bearer challenge without a usable realm", HttpStatusCode.Unauthorized);
                }

                _challenges[registry] = new Challenge("bearer", realmUri, parameters.GetValueOrDefault("service"));
                return true;
            }

            if (scheme == "basic")
            {
                if (_options.Credentials?.Find(registry) is null)
                {
                    return false;
                }

                _challenges[registry] = new Challenge("basic", null, null);
                return true;
            }
        }

        return false;
    }

    private AuthenticationHeaderValue? BasicHeader(string registry) =>
        _options.Credentials?.Find(registry) is { } credential
            ? new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Secret}")))
            : null;

    private async Task<string> FetchTokenAsync(string registry, Challenge challenge, string scope, CancellationToken cancellationToken)
    {
        // One token request per scope at a time: eight threads missing together share one token.
        var gate = _tokenLocks.GetOrAdd((registry, scope), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tokens.TryGetValue((registry, scope), out var cached) && cached.Expires > DateTimeOffset.UtcNow)
            {
                return cached.Token;
            }

            // The credential provider may block (see RegistryClient.ExecuteAsync): never on the socket engine's
            // thread, which the gate's release may have run on.
            await Task.Yield();
            var credential = _options.Credentials?.Find(registry);
            var scopes = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            using var request = credential is { IsIdentityToken: true }
                ? RefreshTokenRequest(challenge, scopes, credential.Secret)
                : TokenGetRequest(challenge, scopes, credential is null ? null : BasicHeader(registry));
            request.Headers.UserAgent.ParseAdd(_options.UserAgent);
            Interlocked.Increment(ref _tokenRequests);
            _options.Log?.Invoke($"auth: requesting a token for {registry} scope '{scope}' from {challenge.Realm!.GetLeftPart(UriPartial.Path)}" +
                                 (credential is { IsIdentityToken: true } ? " (OAuth2 refresh-token grant)" : ""));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.AttemptTimeout);
            using var response = await _clientFor(_options.Proxies.GetValueOrDefault(registry)).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new RegistryAuthenticationException(
                    $"token realm for {registry} refused the request for scope '{scope}' ({(int)response.StatusCode} {response.ReasonPhrase})", response.StatusCode);
            }

            if (response.Content.Headers.ContentLength > MaxTokenResponseBytes)
            {
                throw new RegistryAuthenticationException($"token response from {registry}'s realm is too large");
            }

            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
            string token;
            TimeSpan lifetime;
            try
            {
                using var document = JsonDocument.Parse(body.AsMemory(0, Math.Min(body.Length, MaxTokenResponseBytes)));
                var root = document.RootElement;
                token = (root.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null)
                        ?? (root.TryGetProperty("access_token", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null)
                        ?? throw new RegistryAuthenticationException($"token response from {registry}'s realm has no token");
                // The distribution spec: tokens without expires_in are valid for 60 seconds.
                lifetime = TimeSpan.FromSeconds(root.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var seconds) && seconds > 0 ? seconds : 60);
            }
            catch (JsonException)
            {
                throw new RegistryAuthenticationException($"token response from {registry}'s realm is not JSON");
            }

            var expires = DateTimeOffset.UtcNow + (lifetime > s_expirySlack * 2 ? lifetime - s_expirySlack : lifetime / 2);
            _tokens[(registry, scope)] = new CachedToken(token, expires);
            return token;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The distribution token GET: service and scopes in the query, Basic credentials if we have them.</summary>
    private static HttpRequestMessage TokenGetRequest(Challenge challenge, string[] scopes, AuthenticationHeaderValue? basic)
    {
        var query = new StringBuilder();
        if (challenge.Service is not null)
        {
            query.Append("service=").Append(Uri.EscapeDataString(challenge.Service));
        }

        foreach (var part in scopes)
        {
            query.Append(query.Length > 0 ? "&" : "").Append("scope=").Append(Uri.EscapeDataString(part));
        }

        var builder = new UriBuilder(challenge.Realm!);
        builder.Query = string.IsNullOrEmpty(builder.Query) ? query.ToString() : builder.Query.TrimStart('?') + "&" + query;
        var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
        request.Headers.Authorization = basic;
        return request;
    }

    /// <summary>
    /// An identity token (<c>identitytoken</c> in config.json) is an OAuth2 refresh token: POST to the realm
    /// with <c>grant_type=refresh_token</c> (the distribution token spec's OAuth2 form), answered with an access token.
    /// </summary>
    private static HttpRequestMessage RefreshTokenRequest(Challenge challenge, string[] scopes, string refreshToken)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "refresh_token"),
            new("refresh_token", refreshToken),
            new("client_id", "turbooci"),
        };
        if (challenge.Service is not null)
        {
            form.Add(new("service", challenge.Service));
        }

        if (scopes.Length > 0)
        {
            form.Add(new("scope", string.Join(' ', scopes)));
        }

        return new HttpRequestMessage(HttpMethod.Post, challenge.Realm!) { Content = new FormUrlEncodedContent(form) };
    }

    /// <summary>Parses <c>key="value", key2=value2</c> auth parameters; quoted values may contain commas.</summary>
    internal static Dictionary<string, string> ParseParameters(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }

            var equals = text.IndexOf('=', i);
            if (equals < 0)
            {
                break;
            }

            var key = text[i..equals].Trim();
            i = equals + 1;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    value.Append(text[i++]);
                }

                i++;
            }
            else
            {
                while (i < text.Length && text[i] != ',')
                {
                    value.Append(text[i++]);
                }
            }

            result[key] = value.ToString().Trim();
        }

        return result;
    }

    private sealed record Challenge(string Scheme, Uri? Realm, string? Service);

    private sealed record CachedToken(string Token, DateTimeOffset Expires);
}
