using System.Security.Cryptography;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Cli.Tests;

/// <summary><c>blob get --p2p</c>: ranges through an overlaybd-style P2P agent, whole blobs too; a dead agent is skipped.</summary>
public sealed class P2pCommandTests
{
    [Fact]
    public async Task BlobGetFetchesThroughTheP2pAgentAndSkipsOneThatIsDown()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = new byte[600_000];
        new Random(61).NextBytes(blob);
        var digest = await registry.PushBlobAsync("cli/p2p", blob);
        await using var agent = new LoopbackP2pAgent("dadip2p");
        using var temp = new TempDir();
        var reference = $"{registry.Host}/cli/p2p@{digest}";
        string[] common = ["--config", temp.File("none.json"), "--docker-config", temp.File("none-docker.json"), "--cache-dir", temp.File("cache")];
        File.WriteAllText(temp.File("none.json"), "{}");

        var range = CliRunner.Run(["blob", "get", reference, "--offset", "100000", "--length", "300000", "--out", temp.File("range"), "--p2p", agent.Address, .. common]);
        Assert.True(range.Code == 0, range.Stderr);
        Assert.Equal(blob.AsSpan(100_000, 300_000).ToArray(), File.ReadAllBytes(temp.File("range")));
        Assert.NotEmpty(agent.Requests);
        Assert.All(agent.Requests, r => Assert.Equal($"/dadip2p/http://{registry.Host}/v2/cli/p2p/blobs/{digest}", r.Target));
        Assert.False(Directory.Exists(temp.File("cache")) && Directory.EnumerateFiles(temp.File("cache"), "*", SearchOption.AllDirectories).Any(),
            "through the agent the range cache is not used");

        var ranges = agent.Requests.Count;
        var whole = CliRunner.Run(["blob", "get", reference, "--out", temp.File("whole"), "--p2p", $"http://{agent.Address}", .. common]);
        Assert.True(whole.Code == 0, whole.Stderr);
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(File.ReadAllBytes(temp.File("whole"))));
        Assert.Equal(ranges + 1, agent.Requests.Count);

        var dead = $"127.0.0.1:{LoopbackP2pAgent.UnusedPort()}/dadip2p";
        var direct = CliRunner.Run(["blob", "get", reference, "--offset", "0", "--length", "1000", "--out", temp.File("direct"), "--p2p", dead, "--verbose", .. common]);
        Assert.True(direct.Code == 0, direct.Stderr);
        Assert.Equal(blob.AsSpan(0, 1000).ToArray(), File.ReadAllBytes(temp.File("direct")));
        Assert.Contains($"P2P agent {dead} does not accept connections", direct.Stderr, StringComparison.Ordinal);
        Assert.Equal(ranges + 1, agent.Requests.Count);
    }
}
