using System.Security.Cryptography;
using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Cli.Tests;

/// <summary>
/// The turbooci process runs socket completions inline, and overlaybd's credential servers are asked synchronously
/// from the auth path (a 401, a token request): `blob get` through an http and a Unix-socket credential server, against
/// Basic and bearer-token registries, must get the right bytes, not hang on the socket engine's own thread.
/// </summary>
public sealed class CredentialServerCommandTests
{
    [Theory]
    [InlineData(RegistryAuth.Basic, "http")]
    [InlineData(RegistryAuth.Basic, "uds")]
    [InlineData(RegistryAuth.Token, "uds")]
    public async Task BlobGetAuthenticatesThroughAnOverlaybdCredentialServer(RegistryAuth auth, string mode)
    {
        await using var registry = await RegistryServer.StartAsync(auth);
        var blob = new byte[700_000];
        new Random(71).NextBytes(blob);
        var digest = await registry.PushBlobAsync("cli/creds", blob);
        using var temp = new TempDir();
        var asked = 0;

        // overlaybd's credential server protocol: GET ?remote_url=..., answer {"success": true, "data": {"auths": ...}}.
        async Task<bool> Answer(LoopbackRequest request, Stream stream, System.Net.Sockets.Socket _, CancellationToken token)
        {
            Interlocked.Increment(ref asked);
            var auths = new { auths = new Dictionary<string, object> { [registry.Host] = new { username = registry.User, password = registry.Password } } };
            var body = JsonSerializer.SerializeToUtf8Bytes(new { traceId = "t-1", success = true, data = auths });
            await LoopbackHttpServer.WriteResponseAsync(stream, 200, "OK", [new("Content-Type", "application/json")], body, token);
            return true;
        }

        await using var server = mode == "uds" ? new LoopbackHttpServer(Answer, temp.File("cred.sock")) : new LoopbackHttpServer(Answer);
        var path = mode == "uds" ? temp.File("cred.sock") : $"127.0.0.1:{server.Port}/auth";
        File.WriteAllBytes(temp.File("overlaybd.json"), JsonSerializer.SerializeToUtf8Bytes(new
        {
            cacheConfig = new { cacheType = "file", cacheDir = temp.File("cache"), cacheSizeGB = 1, refillSize = 65536 },
            credentialConfig = new { mode, path, timeout = 5 },
        }));
        File.WriteAllText(temp.File("none-docker.json"), "{}");
        var reference = $"{registry.Host}/cli/creds@{digest}";
        string[] common = ["--config", temp.File("overlaybd.json"), "--docker-config", temp.File("none-docker.json"), "--cache-dir", temp.File("cache")];

        var range = CliRunner.Run(["blob", "get", reference, "--offset", "123456", "--length", "400000", "--out", temp.File("range"), .. common]);
        Assert.True(range.Code == 0, range.Stderr);
        Assert.Equal(blob.AsSpan(123_456, 400_000).ToArray(), File.ReadAllBytes(temp.File("range")));

        var whole = CliRunner.Run(["blob", "get", reference, "--out", temp.File("whole"), .. common]);
        Assert.True(whole.Code == 0, whole.Stderr);
        Assert.Equal(SHA256.HashData(blob), SHA256.HashData(File.ReadAllBytes(temp.File("whole"))));
        Assert.True(Volatile.Read(ref asked) >= 2, $"the credential server was asked {asked} times");
        Assert.DoesNotContain(registry.Password!, range.Stderr + range.Stdout + whole.Stderr + whole.Stdout, StringComparison.Ordinal);
    }
}
