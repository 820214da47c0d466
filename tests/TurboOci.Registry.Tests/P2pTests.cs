using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TurboOci.Registry.Cache;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>
/// overlaybd's <c>p2pConfig</c> against a real docker-registry and a loopback P2P agent that forwards the
/// way DADI's P2P proxy and Dragonfly's dfdaemon do (original URL parsed from the path, headers forwarded).
/// </summary>
public sealed class P2pTests
{
    private const string Repository = "p2p/blob";
    private const int BlobSize = 1024 * 1024 + 4321; // five 256 KiB refill units, the last one short
    private const int RefillSize = 256 * 1024;

    private static readonly RetryPolicy s_fastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) };

    [Fact]
    public async Task EveryBlobReadGoesThroughTheAgentInOverlaybdsUrlFormAndBypassesTheLocalCache()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(BlobSize, seed: 31);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent();
        using var work = new TempDir();
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, agent.Address));
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        var read = await ReadSequentiallyAsync(source);
        await source.DrainAsync();
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(read));

        // Every range GET went to the agent, as http://ADDRESS/<registry blob URL> with its Range; anonymous: no Authorization.
        Assert.Equal(source.FetchRequests, agent.Requests.Count);
        Assert.All(agent.Requests, request =>
        {
            Assert.Equal($"/accelerator/http://{registry.Host}/v2/{Repository}/blobs/{digest}", request.Target);
            Assert.StartsWith("bytes=", request.Header("Range"), StringComparison.Ordinal);
            Assert.Null(request.Header("Authorization"));
        });

        // The registry saw the agent's fetches and one resolving GET of ours (Range 0-0), nothing else.
        await registry.SettleAccessLogAsync();
        var gets = registry.RequestsFor($"/v2/{Repository}/blobs/{digest}", "GET");
        Assert.Equal(agent.Requests.Count + 1, gets.Count);
        Assert.Single(gets, g => g.Bytes <= 1);

        // As overlaybd, the node's range cache is not used with the agent (the agent is the cache): nothing
        // landed on disk, and reading a range again asks the agent again.
        Assert.Empty(Assert.IsType<DiskRangeCache>(store.Cache).Scan());
        var before = agent.Requests.Count;
        var again = new byte[1000];
        await source.ReadAtAsync(500_000, again);
        Assert.Equal(blob.AsSpan(500_000, 1000).ToArray(), again);
        Assert.Equal(before + 1, agent.Requests.Count);
    }

    [Theory]
    [InlineData(RegistryAuth.Basic, "Basic")]
    [InlineData(RegistryAuth.Token, "Bearer")]
    public async Task TheRegistrysAuthorizationGoesThroughTheAgentAndIsAccepted(RegistryAuth auth, string scheme)
    {
        await using var registry = await RegistryServer.StartAsync(auth);
        var blob = BlobFixture.Generate(BlobSize, seed: 32);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent("dadip2p");
        using var work = new TempDir();
        WriteCredentials(work, registry.Host, registry.User, registry.Password!);
        var log = new TestLog();
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, agent.Address), new RegistryClientOptions { Log = log.Add });
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        foreach (var offset in new[] { 700_000, 10, 1_040_000, 300_000 })
        {
            var buffer = new byte[9000];
            var count = await source.ReadAtAsync(offset, buffer);
            Assert.Equal(blob.AsSpan(offset, count).ToArray(), buffer.AsSpan(0, count).ToArray());
        }

        // Each range came through the agent carrying the registry's credentials, which the registry accepted
        // (the agent has none of its own: without them the reads above would have failed).
        Assert.Equal(4, agent.Requests.Count);
        Assert.All(agent.Requests, request => Assert.StartsWith(scheme + " ", request.Header("Authorization"), StringComparison.Ordinal));
        // The registry: one 401 that taught us the challenge, our one resolving GET, and the agent's four fetches.
        await registry.SettleAccessLogAsync();
        var gets = registry.RequestsFor($"/v2/{Repository}/blobs/{digest}", "GET");
        Assert.Equal([401, 206, 206, 206, 206, 206], gets.Select(g => g.Status));
        Assert.Single(gets, g => g.Status == 206 && g.Bytes <= 1);
        log.AssertNoSecrets(registry);
    }

    [Fact]
    public async Task CredentialsNeverGoToTheAgentWithAStorageUrlTheRegistryRedirectedTo()
    {
        // The registry (behind a proxy that plays its storage redirect) wants Basic auth; the storage is
        // another, anonymous registry holding the same blob. overlaybd resolves the redirect itself and asks
        // the agent for the storage URL without the registry's Authorization.
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Basic);
        await using var storage = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(BlobSize, seed: 33);
        var digest = await storage.PushBlobAsync(Repository, blob);
        var storageUrl = $"{storage.BaseUrl}/v2/{Repository}/blobs/{digest}?signature=abc%2Fdef";
        await using var front = new FaultProxy(registry.BaseUrl, (request, _) =>
            request.Header("Authorization") is not null && request.Path.Contains("/blobs/", StringComparison.Ordinal) ? new Fault.Redirect(storageUrl) : null);
        await using var agent = new LoopbackP2pAgent();
        using var work = new TempDir();
        WriteCredentials(work, front.Host, registry.User, registry.Password!);
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, agent.Address));
        await using var source = await store.OpenAsync(RepoBlobUrl(front.Host), digest, blob.Length);

        var buffer = new byte[50_000];
        await source.ReadAtAsync(600_000, buffer);
        Assert.Equal(blob.AsSpan(600_000, buffer.Length).ToArray(), buffer);

        var request = Assert.Single(agent.Requests);
        Assert.Equal($"/accelerator/{storageUrl}", request.Target);
        Assert.Null(request.Header("Authorization"));
        Assert.Equal([storageUrl], agent.OriginUrls);
        Assert.All(front.Requests.Where(r => r.Header("Authorization") is not null), r => Assert.Equal($"/v2/{Repository}/blobs/{digest}", r.Target));
    }

    [Fact]
    public async Task AnAgentRedirectingElsewhereGetsNoCredentialsPassedOn()
    {
        // overlaybd's HTTP client would repeat every header to wherever the agent redirects; we keep the
        // registry's Authorization on the configured agent's origin. A peer agent without it cannot fetch a
        // private blob, so the read fails (clearly, after the retry budget) rather than spread the credentials.
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Basic);
        var blob = BlobFixture.Generate(BlobSize, seed: 39);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var peer = new LoopbackP2pAgent();
        await using var agent = new LoopbackP2pAgent { RedirectTo = $"http://127.0.0.1:{peer.Port}" };
        using var work = new TempDir();
        WriteCredentials(work, registry.Host, registry.User, registry.Password!);
        var log = new TestLog();
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, agent.Address), new RegistryClientOptions { Log = log.Add, Retry = s_fastRetry });
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        var error = await Assert.ThrowsAsync<RegistryException>(async () => await source.ReadAtAsync(0, new byte[100]));
        Assert.Contains("the P2P agent answered 401", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, agent.Requests.Count);
        Assert.All(agent.Requests, r => Assert.StartsWith("Basic ", r.Header("Authorization"), StringComparison.Ordinal));
        Assert.Equal(3, peer.Requests.Count);
        Assert.All(peer.Requests, r => Assert.Null(r.Header("Authorization")));
        log.AssertNoSecrets(registry, error.ToString());
    }

    [Fact]
    public async Task WithP2pDisabledTheAgentSeesNothingAndTheCacheIsUsed()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(BlobSize, seed: 34);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent();
        using var work = new TempDir();
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: false, agent.Address));
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        var read = await ReadSequentiallyAsync(source);
        await source.DrainAsync();
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(read));
        Assert.Empty(agent.Requests);
        await registry.SettleAccessLogAsync();
        Assert.Equal(source.FetchRequests, registry.RequestsFor($"/v2/{Repository}/blobs/{digest}", "GET").Count);
        Assert.Equal(blob.Length, Assert.IsType<DiskRangeCache>(store.Cache).Scan().Sum(e => (long)e.Length));
    }

    [Fact]
    public async Task AnAgentThatIsDownWhenABlobIsOpenedMeansDirectReadsThroughTheCache()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(BlobSize, seed: 35);
        var digest = await registry.PushBlobAsync(Repository, blob);
        using var work = new TempDir();
        var log = new TestLog();
        var address = $"127.0.0.1:{LoopbackP2pAgent.UnusedPort()}/accelerator";
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, address), new RegistryClientOptions { Log = log.Add });
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        var read = await ReadSequentiallyAsync(source);
        await source.DrainAsync();
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(read));
        Assert.Contains($"P2P agent {address} does not accept connections", log.Text, StringComparison.Ordinal);
        await registry.SettleAccessLogAsync();
        Assert.Equal(source.FetchRequests, registry.RequestsFor($"/v2/{Repository}/blobs/{digest}", "GET").Count);
        Assert.Equal(blob.Length, Assert.IsType<DiskRangeCache>(store.Cache).Scan().Sum(e => (long)e.Length));
    }

    [Fact]
    public async Task AgentErrorsAreRetriedWithinTheRegistrysBudgetThenFailClearly()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(BlobSize, seed: 36);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent { Plan = (_, sequence) => sequence <= 2 ? 503 : null };
        using var work = new TempDir();
        var log = new TestLog();
        using var store = RegistryBlobStore.FromConfig(NodeConfig(work, p2p: true, agent.Address), new RegistryClientOptions { Log = log.Add, Retry = s_fastRetry });
        await using var source = await store.OpenAsync(RepoBlobUrl(registry.Host), digest, blob.Length);

        // Two 503s, then the bytes: each retry resolves the URL against the registry again, as overlaybd does.
        var buffer = new byte[20_000];
        await source.ReadAtAsync(800_000, buffer);
        Assert.Equal(blob.AsSpan(800_000, buffer.Length).ToArray(), buffer);
        Assert.Equal(3, agent.Requests.Count);
        await registry.SettleAccessLogAsync();
        Assert.Equal(3, registry.RequestsFor($"/v2/{Repository}/blobs/{digest}", "GET").Count(g => g.Bytes <= 1));
        Assert.Contains("retry 2/2", log.Text, StringComparison.Ordinal);

        // An agent that keeps failing fails the read after the retry budget, with the reason, never with wrong data.
        agent.Plan = (_, _) => 502;
        var error = await Assert.ThrowsAsync<RegistryException>(async () => await source.ReadAtAsync(100_000, buffer));
        Assert.Contains("failed after 3 attempt(s)", error.Message, StringComparison.Ordinal);
        Assert.Contains("502", error.Message, StringComparison.Ordinal);
        Assert.Equal(6, agent.Requests.Count);

        // And the agent being stopped after the open (connection refused) is retried the same way.
        var address = agent.Address;
        await agent.DisposeAsync();
        error = await Assert.ThrowsAsync<RegistryException>(async () => await source.ReadAtAsync(200_000, buffer));
        Assert.Contains("failed after 3 attempt(s)", error.Message, StringComparison.Ordinal);
        Assert.Contains(address.Split('/')[0], log.Text + error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BlobDownloadsGoThroughTheAgentAndManifestsAndHeadsDoNot()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(300_000, seed: 37);
        var digest = Digest.Parse(await registry.PushBlobAsync(Repository, blob));
        await using var agent = new LoopbackP2pAgent();
        using var client = new RegistryClient(new RegistryClientOptions { P2pAddress = $"http://{agent.Address}" });
        var image = ImageReference.Parse($"{registry.Host}/{Repository}");

        Assert.Equal((long?)blob.Length, await client.HeadBlobAsync(image, digest));
        Assert.Empty(agent.Requests);
        using var downloaded = new MemoryStream();
        Assert.Equal(blob.Length, await client.DownloadBlobAsync(image, digest, downloaded));
        Assert.Equal(blob, downloaded.ToArray());
        var request = Assert.Single(agent.Requests);
        Assert.Equal($"/accelerator/http://{registry.Host}/v2/{Repository}/blobs/{digest}", request.Target);
        Assert.Null(request.Header("Range"));
    }

    [Theory]
    [InlineData("localhost:19145/dadip2p", "http://localhost:19145/dadip2p/https://r.example/v2/a/blobs/sha256:00")]
    [InlineData("http://localhost:9731/accelerator", "http://localhost:9731/accelerator/https://r.example/v2/a/blobs/sha256:00")]
    [InlineData("https://10.0.0.1:65001", "https://10.0.0.1:65001/https://r.example/v2/a/blobs/sha256:00")]
    public void AgentUrlsAreTheAddressASlashAndTheOriginalUrl(string address, string expected) =>
        Assert.Equal(expected, P2pAgent.UrlFor(address, new Uri("https://r.example/v2/a/blobs/sha256:00")).AbsoluteUri);

    [Fact]
    public void P2pConfigKeysAndDefaultsAreOverlaybds()
    {
        var defaults = OverlaybdConfig.Parse("{}"u8);
        Assert.False(defaults.P2pEnable);
        Assert.Equal("http://localhost:9731/accelerator", defaults.P2pAddress);
        var example = OverlaybdConfig.Parse("""{"p2pConfig": {"enable": true, "address": "localhost:19145/dadip2p"}, "userAgent": "overlaybd/1.1.14-6c449832"}"""u8);
        Assert.True(example.P2pEnable);
        Assert.Equal("localhost:19145/dadip2p", example.P2pAddress);
        Assert.Equal("overlaybd/1.1.14-6c449832", example.UserAgent);

        // A bad address is an error only when P2P is on (off, overlaybd never looks at it).
        Assert.False(OverlaybdConfig.Parse("""{"p2pConfig": {"enable": false, "address": "ftp://x"}}"""u8).P2pEnable);
        var error = Assert.Throws<TurboOci.Storage.TurboOciFormatException>(() => OverlaybdConfig.Parse("""{"p2pConfig": {"enable": true, "address": "ftp://x"}}"""u8));
        Assert.Contains("p2pConfig.address", error.Message, StringComparison.Ordinal);
        Assert.Throws<TurboOci.Storage.TurboOciFormatException>(() => OverlaybdConfig.Parse("""{"p2pConfig": {"enable": "yes"}}"""u8));
        Assert.Throws<TurboOci.Storage.TurboOciFormatException>(() => OverlaybdConfig.Parse("""{"userAgent": "bad agent ("}"""u8));
    }

    [Fact]
    public async Task TheConfigsUserAgentIsSentToTheRegistryAndTheAgent()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(100_000, seed: 38);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent();
        await using var front = new FaultProxy(registry.BaseUrl);
        using var work = new TempDir();
        var config = NodeConfig(work, p2p: true, agent.Address) with { UserAgent = "overlaybd/1.1.14-test" };
        using var store = RegistryBlobStore.FromConfig(config);
        await using var source = await store.OpenAsync(RepoBlobUrl(front.Host), digest, blob.Length);
        var buffer = new byte[1000];
        await source.ReadAtAsync(5000, buffer);
        Assert.Equal(blob.AsSpan(5000, 1000).ToArray(), buffer);
        Assert.Equal("overlaybd/1.1.14-test", Assert.Single(agent.Requests).Header("User-Agent"));
        Assert.All(front.Requests, r => Assert.Equal("overlaybd/1.1.14-test", r.Header("User-Agent")));
    }

    private static string RepoBlobUrl(string host) => $"http://{host}/v2/{Repository}/blobs/";

    private static OverlaybdConfig NodeConfig(TempDir work, bool p2p, string address) =>
        OverlaybdConfig.Parse(JsonSerializer.SerializeToUtf8Bytes(new
        {
            cacheConfig = new { cacheType = "file", cacheDir = work.File("cache"), cacheSizeGB = 1, refillSize = RefillSize },
            credentialConfig = new { mode = "file", path = work.File("cred.json") },
            p2pConfig = new { enable = p2p, address },
        }));

    /// <summary>overlaybd's credential file: Docker-style <c>auths</c> keyed by registry host.</summary>
    private static void WriteCredentials(TempDir work, string host, string user, string password) =>
        File.WriteAllBytes(work.File("cred.json"), JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["auths"] = new Dictionary<string, object> { [host] = new { auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")) } },
        }));

    private static async Task<byte[]> ReadSequentiallyAsync(RemoteBlobSource source)
    {
        var all = new byte[source.Size];
        for (var offset = 0; offset < all.Length; offset += 100_000)
        {
            var length = Math.Min(100_000, all.Length - offset);
            Assert.Equal(length, await source.ReadAtAsync(offset, all.AsMemory(offset, length)));
        }

        return all;
    }
}
