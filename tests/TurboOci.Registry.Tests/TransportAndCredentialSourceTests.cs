using System.Text;
using System.Text.Json;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>
/// TLS to a registry with a private CA, Docker identity tokens (OAuth2 refresh-token grant), and the
/// credential sources an overlaybd node config can name (file, http, uds credential servers).
/// </summary>
public sealed class TransportAndCredentialSourceTests
{
    private const string Repository = "transport/blob";

    [Fact]
    public async Task ATlsRegistryIsReadOnlyWhenItsCaIsTrustedExplicitly()
    {
        await using var registry = await RegistryServer.StartTlsAsync();
        var blob = BlobFixture.Generate(300_000, seed: 11);
        var digest = Digest.Parse(await registry.PushBlobAsync(Repository, blob));
        var image = ImageReference.Parse($"{registry.Host}/{Repository}");
        var tls = new RegistryClientOptions { PlainHttpForLoopback = false, Retry = new RetryPolicy { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(10) } };

        // Trusting the registry's CA: TLS range reads and a digest-checked download.
        using (var client = new RegistryClient(tls with { CaCertificatesFile = registry.CertificatePath }))
        {
            var range = new byte[100_000];
            await client.ReadBlobRangeAsync(image, digest, 123_456, range);
            Assert.Equal(blob.AsSpan(123_456, range.Length).ToArray(), range);
            var whole = new MemoryStream();
            await client.DownloadBlobAsync(image, digest, whole);
            Assert.Equal(blob, whole.ToArray());
        }

        // Without it (system roots only), or trusting another CA, the handshake is refused at once, not retried.
        using var temp = new TempDir();
        var otherCa = temp.File("other.crt");
        Tool.RunChecked("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", temp.File("other.key"), "-out", otherCa,
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
        foreach (var options in new[] { tls, tls with { CaCertificatesFile = otherCa } })
        {
            using var client = new RegistryClient(options);
            var error = await Assert.ThrowsAsync<RegistryException>(() => client.ReadBlobRangeAsync(image, digest, 0, new byte[10]));
            Assert.Contains("certificate is not trusted", error.Message, StringComparison.Ordinal);
            Assert.Equal(1, client.RequestCount);
        }

        // And a plain-HTTP client cannot talk to it at all.
        using (var plain = new RegistryClient(new RegistryClientOptions { Retry = new RetryPolicy { MaxAttempts = 1 } }))
        {
            await Assert.ThrowsAsync<RegistryException>(() => plain.ReadBlobRangeAsync(image, digest, 0, new byte[10]));
        }
    }

    [Fact]
    public async Task AnIdentityTokenIsExchangedThroughAnOAuth2RefreshGrantAndNeverLogged()
    {
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Token);
        var blob = BlobFixture.Generate(200_000, seed: 12);
        var digest = Digest.Parse(await registry.PushBlobAsync(Repository, blob));
        var identity = registry.Tokens!.IssueIdentityToken();
        using var temp = new TempDir();
        var config = temp.File("config.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new { auths = new Dictionary<string, object> { [registry.Host] = new { identitytoken = identity } } }));

        var log = new TestLog();
        var image = ImageReference.Parse($"{registry.Host}/{Repository}");
        using (var client = new RegistryClient(new RegistryClientOptions { Credentials = new DockerConfigCredentialProvider(config), Log = log.Add }))
        {
            var buffer = new byte[50_000];
            await client.ReadBlobRangeAsync(image, digest, 1000, buffer);
            Assert.Equal(blob.AsSpan(1000, buffer.Length).ToArray(), buffer);
            await client.ReadBlobRangeAsync(image, digest, 9000, buffer);
            Assert.Equal(blob.AsSpan(9000, buffer.Length).ToArray(), buffer);
        }

        Assert.Equal(1, registry.Tokens.RefreshGrants); // one POST, then the access token is cached
        Assert.Contains("refresh-token grant", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(identity, log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(registry.Tokens.LastToken!, log.Text, StringComparison.Ordinal);

        // A revoked (unknown) identity token fails as an authentication error that does not show it.
        File.WriteAllText(config, JsonSerializer.Serialize(new { auths = new Dictionary<string, object> { [registry.Host] = new { identitytoken = "idt-revoked-0123" } } }));
        using (var client = new RegistryClient(new RegistryClientOptions { Credentials = new DockerConfigCredentialProvider(config), Log = log.Add }))
        {
            var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => client.ReadBlobRangeAsync(image, digest, 0, new byte[10]));
            Assert.DoesNotContain("idt-revoked-0123", error.Message + log.Text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CredentialConfigModesAreReadAsOverlaybdReadsThem()
    {
        static OverlaybdConfig Parse(string json) => OverlaybdConfig.Parse(Encoding.UTF8.GetBytes(json));

        var file = Parse("""{"credentialConfig": {"mode": "file", "path": "/etc/c.json"}, "credentialFilePath": "/old.json"}""");
        Assert.Equal(("file", "/etc/c.json"), (file.CredentialMode, file.CredentialFilePath));
        var legacy = Parse("""{"credentialConfig": {"mode": ""}, "credentialFilePath": "/old.json"}""");
        Assert.Equal(("file", "/old.json"), (legacy.CredentialMode, legacy.CredentialFilePath));
        var http = Parse("""{"credentialConfig": {"mode": "http", "path": "127.0.0.1:9/auth", "timeout": 3}}""");
        Assert.Equal(("http", "127.0.0.1:9/auth", 3), (http.CredentialMode, http.CredentialServer, http.CredentialTimeoutSeconds));
        var https = Parse("""{"credentialConfig": {"mode": "https", "path": "https://c.example/auth", "server_ca_path": "/ca.pem", "client_cert_path": "/c.pem", "client_key_path": "/k.pem"}}""");
        Assert.Equal(("https", "/ca.pem", "/c.pem", "/k.pem"), (https.CredentialMode, https.CredentialServerCaPath, https.CredentialClientCertPath, https.CredentialClientKeyPath));
        var uds = Parse("""{"credentialConfig": {"mode": "uds", "path": "/run/cred.sock"}}""");
        Assert.Equal(("uds", "/run/cred.sock"), (uds.CredentialMode, uds.CredentialServer));

        // An unknown mode, or a mode without a path, means no credentials at all (not the legacy file).
        foreach (var none in new[] { """{"credentialConfig": {"mode": "ldap", "path": "/x"}}""", """{"credentialConfig": {"mode": "http"}, "credentialFilePath": "/old.json"}""" })
        {
            var config = Parse(none);
            Assert.Equal("none", config.CredentialMode);
            Assert.Null(OverlaybdCredentials.For(config));
        }

        Assert.Equal("credentialConfig.path", Assert.Throws<TurboOciFormatException>(() => Parse("""{"credentialConfig": {"mode": "https", "path": "c.example/auth"}}""")).Field);
        Assert.Equal("credentialConfig.timeout", Assert.Throws<TurboOciFormatException>(() => Parse("""{"credentialConfig": {"mode": "http", "path": "h:1/a", "timeout": "1"}}""")).Field);
        Assert.Equal("credentialConfig.timeout", Assert.Throws<TurboOciFormatException>(() => Parse("""{"credentialConfig": {"mode": "http", "path": "h:1/a", "timeout": 0}}""")).Field);
    }

    [Theory]
    [InlineData("file")]
    [InlineData("http")]
    [InlineData("uds")]
    public async Task ANodeConfigsCredentialSourceOpensABasicAuthRegistry(string mode)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Basic);
        var blob = BlobFixture.Generate(150_000, seed: 13);
        var digest = await registry.PushBlobAsync(Repository, blob);
        using var temp = new TempDir();
        var auths = new { auths = new Dictionary<string, object> { ["other.example"] = new { auth = "b3RoZXI6b3RoZXI=" }, [registry.Host] = new { username = registry.User, password = registry.Password } } };
        var asked = new List<string>();

        // overlaybd's credential server protocol: GET ?remote_url=..., answer {"success": true, "data": {"auths": ...}}.
        async Task<bool> Answer(LoopbackRequest request, Stream stream, System.Net.Sockets.Socket _, CancellationToken token)
        {
            lock (asked)
            {
                asked.Add(request.Target);
            }

            var body = JsonSerializer.SerializeToUtf8Bytes(new { traceId = "t-1", success = true, data = auths });
            await LoopbackHttpServer.WriteResponseAsync(stream, 200, "OK", [new("Content-Type", "application/json")], body, token);
            return true;
        }

        LoopbackHttpServer? server = null;
        object credentialConfig;
        switch (mode)
        {
            case "file":
                File.WriteAllText(temp.File("cred.json"), JsonSerializer.Serialize(auths));
                credentialConfig = new { mode, path = temp.File("cred.json") };
                break;
            case "http":
                server = new LoopbackHttpServer(Answer);
                credentialConfig = new { mode, path = $"127.0.0.1:{server.Port}/auth", timeout = 5 };
                break;
            default:
                server = new LoopbackHttpServer(Answer, temp.File("cred.sock"));
                credentialConfig = new { mode, path = temp.File("cred.sock"), timeout = 5 };
                break;
        }

        await using (server)
        {
            var node = OverlaybdConfig.Parse(JsonSerializer.SerializeToUtf8Bytes(new
            {
                cacheConfig = new { cacheType = "file", cacheDir = temp.File("cache"), cacheSizeGB = 1, refillSize = 65536 },
                credentialConfig,
            }));
            using var store = RegistryBlobStore.FromConfig(node);
            await using var source = await store.OpenAsync($"http://{registry.Host}/v2/{Repository}/blobs", digest, blob.Length);
            var buffer = new byte[100_000];
            Assert.Equal(buffer.Length, await source.ReadAtAsync(20_000, buffer));
            Assert.Equal(blob.AsSpan(20_000, buffer.Length).ToArray(), buffer);
            Assert.Equal(65536, store.Options.FetchUnit); // refillSize is the fetch unit
        }

        if (mode != "file")
        {
            // Asked once (answers are kept), about this registry.
            var target = Assert.Single(asked);
            Assert.StartsWith(mode == "uds" ? "/auth?remote_url=" : "/auth?remote_url=", target, StringComparison.Ordinal);
            Assert.Contains(Uri.EscapeDataString(registry.Host), target, StringComparison.Ordinal);
        }

        // Without credentials the same registry refuses: the source above really used them.
        var anonymous = OverlaybdConfig.Parse(JsonSerializer.SerializeToUtf8Bytes(new
        {
            cacheConfig = new { cacheType = "file", cacheDir = temp.File("cache2"), cacheSizeGB = 1 },
            credentialConfig = new { mode = "none-at-all", path = "/x" },
        }));
        using (var store = RegistryBlobStore.FromConfig(anonymous))
        {
            await using var source = await store.OpenAsync($"http://{registry.Host}/v2/{Repository}/blobs", digest, blob.Length);
            await Assert.ThrowsAsync<RegistryAuthenticationException>(() => source.ReadAtAsync(0, new byte[10]).AsTask());
        }
    }

    [Fact]
    public void RepoBlobUrlsNameTheRegistryAndRepository()
    {
        var (image, plain) = RegistryBlobStore.ParseRepoBlobUrl("https://reg.example/v2/ns/sub/repo/blobs/");
        Assert.Equal(("reg.example", "ns/sub/repo", false), (image.Registry, image.Repository, plain));
        (image, plain) = RegistryBlobStore.ParseRepoBlobUrl("http://10.0.0.2:5000/v2/repo/blobs");
        Assert.Equal(("10.0.0.2:5000", "repo", true), (image.Registry, image.Repository, plain));
        foreach (var bad in new[] { "ftp://h/v2/r/blobs", "https://h/v1/r/blobs", "https://h/v2/blobs", "https://h/v2//blobs", "https://h/v2/a//b/blobs", "https://h/v2/r/manifests", "https://h/v2/r/blobs?x=1", "not a url" })
        {
            Assert.Throws<FormatException>(() => RegistryBlobStore.ParseRepoBlobUrl(bad));
        }

        Assert.Throws<ArgumentException>(() => RegistryBlobStore.ParseRepoBlobUrl(""));
    }
}
