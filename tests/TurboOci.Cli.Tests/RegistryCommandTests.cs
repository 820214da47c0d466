using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Cli.Tests;

/// <summary>The image, blob and cache verbs against a real docker-registry with Basic auth, credentials from a Docker config.</summary>
public sealed class RegistryCommandTests
{
    [Fact]
    public async Task CopyInspectGetAndCacheVerbsWorkEndToEndWithoutLeakingTheSecret()
    {
        using var temp = new TempDir();
        var layout = temp.File("layout");
        UmociImage.BuildTwoLayers(layout, temp.Path);
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "index.json")));
        var manifestDigest = index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!;
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "blobs", "sha256", manifestDigest[7..])));
        var layer = manifest.RootElement.GetProperty("layers")[0];
        var layerDigest = layer.GetProperty("digest").GetString()!;
        var layerBytes = File.ReadAllBytes(Path.Combine(layout, "blobs", "sha256", layerDigest[7..]));

        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Basic);
        var dockerConfig = temp.File("docker.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{registry.User}:{registry.Password}"));
        File.WriteAllText(dockerConfig, JsonSerializer.Serialize(new { auths = new Dictionary<string, object> { [registry.Host] = new { auth } } }));
        string[] common = ["--docker-config", dockerConfig];
        var cache = temp.File("cache");
        var outputs = new List<string>();
        (int Code, string Stdout, string Stderr) Run(params string[] args)
        {
            var result = CliRunner.Run([.. args, .. common]);
            outputs.Add(result.Stdout + result.Stderr);
            Assert.True(result.Code == 0, $"turbooci {string.Join(' ', args)} exited {result.Code}: {result.Stderr}");
            return result;
        }

        var image = $"{registry.Host}/cli/app:v1";
        var copy = Run("image", "copy", $"oci:{layout}:v1", image);
        Assert.Contains(manifestDigest, copy.Stdout);
        Assert.Contains("blobs copied 3", copy.Stdout);

        var inspect = JsonDocument.Parse(Run("image", "inspect", image, "--json").Stdout).RootElement;
        Assert.Equal(manifestDigest, inspect.GetProperty("digest").GetString());
        Assert.Equal(layerDigest, inspect.GetProperty("manifest").GetProperty("layers")[0].GetProperty("digest").GetString());
        Assert.Contains("layers       2", Run("image", "inspect", image).Stdout);

        Run("blob", "get", $"{registry.Host}/cli/app@{layerDigest}", "--out", temp.File("layer"));
        Assert.Equal(layerBytes, File.ReadAllBytes(temp.File("layer")));
        Run("blob", "get", $"{registry.Host}/cli/app@{layerDigest}", "--offset", "1000", "--length", "5000", "--out", temp.File("range"),
            "--cache-dir", cache, "--fetch-unit", "64K");
        Assert.Equal(layerBytes.AsSpan(1000, 5000).ToArray(), File.ReadAllBytes(temp.File("range")));

        var stats = JsonDocument.Parse(Run("cache", "stats", "--cache-dir", cache, "--json").Stdout).RootElement;
        Assert.Equal(1, stats.GetProperty("blobs").GetInt32());
        Assert.True(stats.GetProperty("bytes").GetInt64() > 5000);
        Assert.Contains("0 damaged", Run("cache", "prune", "--cache-dir", cache, "--verify").Stdout);
        Run("cache", "prune", "--cache-dir", cache);
        Assert.Equal(0, JsonDocument.Parse(Run("cache", "stats", "--cache-dir", cache, "--json").Stdout).RootElement.GetProperty("bytes").GetInt64());

        // skopeo agrees with what we pushed.
        var skopeo = JsonDocument.Parse(Tool.RunChecked("skopeo", ["inspect", "--tls-verify=false", .. registry.SkopeoCredentials("--creds"), $"docker://{image}"]).Stdout);
        Assert.Equal(manifestDigest, skopeo.RootElement.GetProperty("Digest").GetString());

        // A wrong digest is bad data (exit 2), a missing credential an error that names no secret.
        var wrong = CliRunner.Run(["blob", "get", $"{registry.Host}/cli/app@sha256:{Convert.ToHexStringLower(SHA256.HashData("x"u8))}", "--out", temp.File("x"), .. common]);
        Assert.NotEqual(0, wrong.Code);
        var anonymous = CliRunner.Run("image", "inspect", image, "--docker-config", temp.File("none.json"));
        Assert.NotEqual(0, anonymous.Code);
        Assert.Contains("authentication failed", anonymous.Stderr);
        outputs.Add(wrong.Stdout + wrong.Stderr + anonymous.Stdout + anonymous.Stderr);
        foreach (var output in outputs)
        {
            Assert.DoesNotContain(registry.Password!, output, StringComparison.Ordinal);
        }
    }
}
