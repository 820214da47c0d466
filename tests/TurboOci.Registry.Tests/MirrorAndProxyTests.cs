using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

public sealed class MirrorAndProxyTests
{
    [Fact]
    public async Task PullsGoToTheMirrorFirstAndFallBackWhenItFails()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(100_000, seed: 21);
        var digest = Digest.Parse(await registry.PushBlobAsync("mirrored/repo", blob));
        await using var mirror = new FaultProxy(registry.BaseUrl);
        var upstreamName = $"localhost:{registry.Port}"; // the name users type; the mirror serves it
        var log = new TestLog();
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Mirrors = new Dictionary<string, IReadOnlyList<string>> { [upstreamName] = [mirror.BaseUrl] },
            Log = log.Add,
        });
        var image = ImageReference.Parse($"{upstreamName}/mirrored/repo");
        var buffer = new byte[1000];
        await client.ReadBlobRangeAsync(image, digest, 500, buffer);
        Assert.Equal(blob.AsSpan(500, 1000).ToArray(), buffer);
        await registry.SettleAccessLogAsync();
        Assert.Single(mirror.Requests);
        Assert.Single(registry.RequestsFor($"/v2/mirrored/repo/blobs/{digest}", "GET"));

        // A broken mirror is skipped: the registry itself answers.
        mirror.Plan = (_, _) => new Fault.Status(503);
        await client.ReadBlobRangeAsync(image, digest, 2000, buffer);
        Assert.Equal(blob.AsSpan(2000, 1000).ToArray(), buffer);
        Assert.Equal(2, mirror.Requests.Count);
        await registry.SettleAccessLogAsync();
        Assert.Equal(2, registry.RequestsFor($"/v2/mirrored/repo/blobs/{digest}", "GET").Count);
        Assert.Contains("trying the next endpoint", log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestsGoThroughTheRegistrysHttpProxy()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = BlobFixture.Generate(50_000, seed: 22);
        var digest = Digest.Parse(await registry.PushBlobAsync("proxied/repo", blob));
        // The fault proxy forwards absolute-form targets like a forward HTTP proxy (the P2P hook).
        await using var proxy = new FaultProxy(registry.BaseUrl);
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Proxies = new Dictionary<string, Uri> { [registry.Host] = new(proxy.BaseUrl) },
        });
        var buffer = new byte[100];
        await client.ReadBlobRangeAsync(ImageReference.Parse($"{registry.Host}/proxied/repo"), digest, 40_000, buffer);
        Assert.Equal(blob.AsSpan(40_000, 100).ToArray(), buffer);
        var request = Assert.Single(proxy.Requests);
        Assert.Equal($"http://{registry.Host}/v2/proxied/repo/blobs/{digest}", request.Target);
    }
}
