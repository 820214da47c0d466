using System.Text;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

public sealed class CredentialAndConfigTests
{
    [Fact]
    public void DockerConfigAuthsAreDecoded()
    {
        using var temp = new TempDir();
        var path = temp.File("config.json");
        File.WriteAllText(path, $$"""
            {
              "auths": {
                "https://index.docker.io/v1/": { "auth": "{{B64("hubuser:hub:pass")}}" },
                "127.0.0.1:5000": { "auth": "{{B64("local:secret")}}" },
                "plain.example": { "username": "u", "password": "p" },
                "127.0.0.1:5000/ignored-duplicate": { "auth": "{{B64("dup:dup")}}" }
              }
            }
            """);
        var provider = new DockerConfigCredentialProvider(path);
        Assert.Equal(new RegistryCredential("hubuser", "hub:pass"), provider.Find("docker.io"));
        Assert.Equal(new RegistryCredential("local", "secret"), provider.Find("127.0.0.1:5000"));
        Assert.Equal(new RegistryCredential("u", "p"), provider.Find("plain.example"));
        Assert.Null(provider.Find("other.example"));
        Assert.DoesNotContain("secret", provider.Find("127.0.0.1:5000")!.ToString(), StringComparison.Ordinal);
        Assert.Null(new DockerConfigCredentialProvider(temp.File("missing.json")).Find("docker.io"));
    }

    [Fact]
    public void BrokenAuthValueIsRejected()
    {
        using var temp = new TempDir();
        var path = temp.File("config.json");
        File.WriteAllText(path, """{"auths":{"h.example":{"auth":"not base64!"}}}""");
        Assert.Throws<InvalidDataException>(() => new DockerConfigCredentialProvider(path));
    }

    [Fact]
    public async Task CredentialHelperProgramSuppliesTheSecretForAPull()
    {
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Token);
        var blob = BlobFixture.Generate(10_000, seed: 4);
        var digest = Digest.Parse(await registry.PushBlobAsync("helper/repo", blob));
        using var temp = new TempDir();
        // A real program the client runs: docker's credential-helper protocol, server URL on stdin.
        var helper = temp.File("docker-credential-turbotest");
        File.WriteAllText(helper, $$"""
            #!/bin/sh
            [ "$1" = get ] || exit 2
            read server
            echo "$server" >> "{{temp.File("asked")}}"
            if [ "$server" = "{{registry.Host}}" ]; then
              printf '{"ServerURL":"%s","Username":"{{registry.User}}","Secret":"{{registry.Password}}"}' "$server"
            else
              echo "credentials not found in native keychain"; exit 1
            fi
            """);
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(temp.File("config.json"), $$$"""{"credHelpers":{"{{{registry.Host}}}":"turbotest"}}""");
        File.WriteAllText(temp.File("store.json"), """{"credsStore":"turbotest"}""");

        foreach (var config in new[] { "config.json", "store.json" })
        {
            var provider = new DockerConfigCredentialProvider(temp.File(config), helperDirectory: temp.Path);
            Assert.Null(provider.Find("unknown.example:1"));
            var log = new TestLog();
            using var client = new RegistryClient(new RegistryClientOptions { Credentials = provider, Log = log.Add });
            var read = new byte[500];
            await client.ReadBlobRangeAsync(ImageReference.Parse($"{registry.Host}/helper/repo"), digest, 100, read);
            Assert.Equal(blob.AsSpan(100, 500).ToArray(), read);
            log.AssertNoSecrets(registry);
        }

        Assert.Contains(registry.Host, File.ReadAllLines(temp.File("asked")));
    }

    [Fact]
    public void OverlaybdConfigReadsCacheCredentialAndP2pSettings()
    {
        var config = OverlaybdConfig.Parse("""
            {
              "logConfig": { "logLevel": 1 },
              "cacheConfig": { "cacheType": "file", "cacheDir": "/var/cache/x", "cacheSizeGB": 7, "refillSize": 1048576 },
              "credentialConfig": { "mode": "file", "path": "/etc/cred.json" },
              "p2pConfig": { "enable": true, "address": "http://127.0.0.1:9999/p2p" },
              "somethingNew": [1, 2, 3]
            }
            """u8);
        Assert.Equal(("file", "/var/cache/x", 7L, 1048576), (config.CacheType, config.CacheDir, config.CacheSizeGB, config.RefillSize));
        Assert.Equal(7L << 30, config.CacheSizeBytes);
        Assert.Equal("/etc/cred.json", config.CredentialFilePath);
        Assert.True(config.P2pEnable);
        Assert.Equal("http://127.0.0.1:9999/p2p", config.P2pAddress);

        // Legacy top-level keys apply when cacheConfig.cacheType is empty; defaults otherwise.
        var legacy = OverlaybdConfig.Parse("""{"registryCacheDir":"/old","registryCacheSizeGB":2,"credentialFilePath":"/c.json"}"""u8);
        Assert.Equal(("file", "/old", 2L, 262144, "/c.json"), (legacy.CacheType, legacy.CacheDir, legacy.CacheSizeGB, legacy.RefillSize, legacy.CredentialFilePath));
        var defaults = OverlaybdConfig.Parse("{}"u8);
        Assert.Equal(("/opt/overlaybd/registry_cache", 4L, "/opt/overlaybd/cred.json"), (defaults.CacheDir, defaults.CacheSizeGB, defaults.CredentialFilePath));
    }

    [Theory]
    [InlineData("""{"cacheConfig":{"cacheType":"file","cacheSizeGB":"4"}}""", "cacheConfig.cacheSizeGB")]
    [InlineData("""{"cacheConfig":{"cacheType":"redis"}}""", "cacheConfig.cacheType")]
    [InlineData("""{"cacheConfig":{"cacheType":"file","refillSize":1000}}""", "cacheConfig.refillSize")]
    [InlineData("""{"cacheConfig":{"cacheType":"file","cacheSizeGB":-1}}""", "cacheConfig.cacheSizeGB")]
    [InlineData("""{"p2pConfig":{"enable":"yes"}}""", "p2pConfig.enable")]
    [InlineData("""{"cacheConfig":[]}""", "cacheConfig")]
    [InlineData("""[1]""", "document")]
    [InlineData("""{"cacheConfig": """, "document")]
    public void OverlaybdConfigRejectsWrongTypesByName(string json, string field)
    {
        var error = Assert.Throws<TurboOciFormatException>(() => OverlaybdConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(field, error.Field);
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));
}
