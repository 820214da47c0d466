using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace TurboOci.Testing.Registry;

/// <summary>
/// A bearer-token realm for <see cref="RegistryServer"/>: answers <c>GET /token?service=..&amp;scope=..</c>
/// with a real RS256 JWT that docker-registry verifies against the self-signed certificate written to
/// <see cref="RootCertificatePath"/>. Optionally demands Basic credentials before issuing a token.
/// Counts the tokens it issued per scope so tests can prove tokens are cached. Also answers the OAuth2 form,
/// <c>POST /token</c> with <c>grant_type=refresh_token</c>, for the identity token it handed out
/// (<see cref="IssueIdentityToken"/>), as registries do for Docker's <c>identitytoken</c> logins.
/// </summary>
public sealed class TestTokenServer : IDisposable, IAsyncDisposable
{
    public const string Issuer = "turbooci-test-issuer";
    public const string Service = "turbooci-test-registry";

    private readonly RSA _key = RSA.Create(2048);
    private readonly LoopbackHttpServer _http;
    private readonly string? _username;
    private readonly string? _password;
    private readonly ConcurrentQueue<string> _issuedScopes = new();

    public TestTokenServer(string directory, string? username = null, string? password = null, TimeSpan? lifetime = null)
    {
        _username = username;
        _password = password;
        Lifetime = lifetime ?? TimeSpan.FromMinutes(5);
        var request = new CertificateRequest("CN=turbooci test token signer", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        RootCertificatePath = System.IO.Path.Combine(directory, "token-root.pem");
        File.WriteAllText(RootCertificatePath, certificate.ExportCertificatePem());
        KeyId = LibtrustKeyId(_key.ExportSubjectPublicKeyInfo());
        _http = new LoopbackHttpServer(HandleAsync);
    }

    /// <summary>The PEM the registry's <c>auth.token.rootcertbundle</c> points at.</summary>
    public string RootCertificatePath { get; }

    /// <summary>The realm URL the registry sends in its challenge.</summary>
    public string Realm => $"{_http.BaseUrl}/token";

    public TimeSpan Lifetime { get; set; }

    /// <summary>Every token issued so far, as its scope string (empty for a scope-less login).</summary>
    public IReadOnlyCollection<string> IssuedScopes => _issuedScopes;

    /// <summary>The last token handed out, so tests can grep logs for it.</summary>
    public string? LastToken { get; private set; }

    /// <summary>The refresh token POSTs must present, once <see cref="IssueIdentityToken"/> made one.</summary>
    public string? IdentityToken { get; private set; }

    /// <summary>Access tokens issued for refresh-token grants (POST), not counting GETs.</summary>
    public int RefreshGrants => _refreshGrants;

    private int _refreshGrants;

    /// <summary>Makes a random identity (refresh) token this realm will accept on its OAuth2 POST.</summary>
    public string IssueIdentityToken() =>
        IdentityToken = "idt-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    /// <summary>
    /// The key id docker-registry derives from a trusted public key (docker/libtrust): SHA-256 of the
    /// DER SubjectPublicKeyInfo, first 240 bits, base32 without padding, in groups of four joined by ':'.
    /// </summary>
    public string KeyId { get; }

    public static string LibtrustKeyId(ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        var digest = SHA256.HashData(subjectPublicKeyInfo)[..30];
        var base32 = Base32(digest);
        var groups = Enumerable.Range(0, base32.Length / 4).Select(i => base32.Substring(i * 4, 4));
        return string.Join(':', groups);
    }

    private static string Base32(ReadOnlySpan<byte> data)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var output = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                output.Append(alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            output.Append(alphabet[(buffer << (5 - bits)) & 31]);
        }

        return output.ToString();
    }

    private async Task<bool> HandleAsync(LoopbackRequest request, Stream stream, System.Net.Sockets.Socket socket, CancellationToken cancellationToken)
    {
        if (request.Path != "/token")
        {
            await LoopbackHttpServer.WriteResponseAsync(stream, 404, "Not Found", null, default, cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (request.Method == "POST")
        {
            await HandleRefreshGrantAsync(request, stream, cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (_username is not null)
        {
            var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_username}:{_password}"));
            if (request.Header("Authorization") != expected)
            {
                await LoopbackHttpServer.WriteResponseAsync(stream, 401, "Unauthorized",
                    [new("WWW-Authenticate", "Basic realm=\"token\"")], "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                return true;
            }
        }

        var scopes = request.Query["scope"].ToList();
        var token = Sign(request.Query["service"].FirstOrDefault() ?? Service, scopes);
        _issuedScopes.Enqueue(string.Join(' ', scopes));
        LastToken = token;
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = (int)Lifetime.TotalSeconds,
            // RFC 3339 with 'Z': older Go clients parse this field from the raw JSON bytes, so no escaped '+'.
            ["issued_at"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        });
        await LoopbackHttpServer.WriteResponseAsync(stream, 200, "OK", [new("Content-Type", "application/json")], body, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>OAuth2 form POST: <c>grant_type=refresh_token&amp;refresh_token=..&amp;service=..&amp;scope=a b</c>.</summary>
    private async Task HandleRefreshGrantAsync(LoopbackRequest request, Stream stream, CancellationToken cancellationToken)
    {
        var form = Encoding.UTF8.GetString(request.Body).Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0].Replace('+', ' ')), p => p.Length > 1 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : "");
        if (form.GetValueOrDefault("grant_type") != "refresh_token" || IdentityToken is null || form.GetValueOrDefault("refresh_token") != IdentityToken)
        {
            await LoopbackHttpServer.WriteResponseAsync(stream, 401, "Unauthorized", [new("Content-Type", "application/json")],
                "{\"error\":\"invalid_grant\"}"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            return;
        }

        var scopes = (form.GetValueOrDefault("scope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        var token = Sign(form.GetValueOrDefault("service") ?? Service, scopes);
        _issuedScopes.Enqueue(string.Join(' ', scopes));
        Interlocked.Increment(ref _refreshGrants);
        LastToken = token;
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["access_token"] = token,
            ["expires_in"] = (int)Lifetime.TotalSeconds,
            ["scope"] = string.Join(' ', scopes),
        });
        await LoopbackHttpServer.WriteResponseAsync(stream, 200, "OK", [new("Content-Type", "application/json")], body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Grants every action asked for in each <c>repository:NAME:ACTIONS</c> scope.</summary>
    private string Sign(string audience, IEnumerable<string> scopes)
    {
        var access = scopes.SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(s => s.Split(':'))
            .Where(parts => parts.Length >= 3)
            .Select(parts => new Dictionary<string, object>
            {
                ["type"] = parts[0],
                ["name"] = string.Join(':', parts[1..^1]),
                ["actions"] = parts[^1].Split(','),
            })
            .ToList();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new Dictionary<string, object> { ["typ"] = "JWT", ["alg"] = "RS256", ["kid"] = KeyId };
        var claims = new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = _username ?? "anonymous",
            ["aud"] = audience,
            ["exp"] = now + (long)Lifetime.TotalSeconds,
            ["nbf"] = now - 10,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        };
        var signingInput = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async ValueTask DisposeAsync()
    {
        await _http.DisposeAsync().ConfigureAwait(false);
        _key.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
