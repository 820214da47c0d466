using System.Security.Cryptography;
using System.Text.Json;
using TurboOci.Registry;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Images.Tests.Remote;

/// <summary>A node registry built from an overlaybd.json file routes its blob reads as the file's p2pConfig says.</summary>
public sealed class NodeRegistryP2pTests
{
    private const string Repository = "node/p2p";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheNodesOverlaybdJsonP2pConfigDecidesWhetherBlobsComeThroughTheAgent(bool enable)
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = new byte[700_000];
        new Random(51).NextBytes(blob);
        var digest = await registry.PushBlobAsync(Repository, blob);
        await using var agent = new LoopbackP2pAgent("dadip2p");
        using var work = new TempDir();
        var configPath = work.File("overlaybd.json");
        await File.WriteAllBytesAsync(configPath, JsonSerializer.SerializeToUtf8Bytes(new
        {
            cacheConfig = new { cacheType = "file", cacheDir = work.File("cache"), cacheSizeGB = 1, refillSize = 65536 },
            credentialConfig = new { mode = "file", path = work.File("cred.json") },
            p2pConfig = new { enable, address = agent.Address },
        }));

        using var node = new NodeRegistry(configPath);
        var image = new ImageConfig { RepoBlobUrl = $"http://{registry.Host}/v2/{Repository}/blobs" };
        var store = node.For(image);
        Assert.NotNull(store);
        await using var source = await store.OpenAsync(image.RepoBlobUrl, digest, blob.Length);
        var read = new byte[blob.Length];
        for (var offset = 0; offset < read.Length; offset += 50_000)
        {
            await source.ReadAtAsync(offset, read.AsMemory(offset, Math.Min(50_000, read.Length - offset)));
        }

        await source.DrainAsync();
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(read));
        if (enable)
        {
            Assert.Equal(source.FetchRequests, agent.Requests.Count);
            Assert.All(agent.Requests, r => Assert.Equal($"/dadip2p/http://{registry.Host}/v2/{Repository}/blobs/{digest}", r.Target));
        }
        else
        {
            Assert.Empty(agent.Requests);
        }
    }
}
