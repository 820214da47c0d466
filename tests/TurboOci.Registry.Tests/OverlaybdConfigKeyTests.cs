using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>overlaybd.json keys beyond cache and credentials that reach the registry path.</summary>
public sealed class OverlaybdConfigKeyTests
{
    private const string Repository = "mtls/blob";

    [Fact]
    public async Task CertConfigPresentsTheClientCertificateARegistryRequires()
    {
        await using var registry = await RegistryServer.StartMutualTlsAsync();
        var blob = BlobFixture.Generate(200_000, seed: 41);
        var digest = await registry.PushBlobAsync(Repository, blob);
        using var work = new TempDir();
        var repoBlobUrl = $"https://{registry.Host}/v2/{Repository}/blobs/";
        var tls = new RegistryClientOptions
        {
            PlainHttpForLoopback = false,
            CaCertificatesFile = registry.CertificatePath,
            Retry = new RetryPolicy { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(10) },
        };

        // With certConfig naming the client certificate and key, reads succeed.
        var config = Config(work, new { certFile = registry.ClientCertificatePath, keyFile = registry.ClientKeyPath });
        Assert.Equal((registry.ClientCertificatePath, registry.ClientKeyPath), (config.CertFile, config.KeyFile));
        using (var store = RegistryBlobStore.FromConfig(config, tls))
        await using (var source = await store.OpenAsync(repoBlobUrl, digest, blob.Length))
        {
            var buffer = new byte[5000];
            await source.ReadAtAsync(150_000, buffer);
            Assert.Equal(blob.AsSpan(150_000, buffer.Length).ToArray(), buffer);
        }

        // Without it (or with only the certificate named, which overlaybd ignores) the registry refuses the handshake.
        foreach (var cert in new object[] { new { }, new { certFile = registry.ClientCertificatePath } })
        {
            using var store = RegistryBlobStore.FromConfig(Config(work, cert), tls);
            await using var source = await store.OpenAsync(repoBlobUrl, digest, blob.Length);
            await Assert.ThrowsAsync<RegistryException>(async () => await source.ReadAtAsync(0, new byte[10]));
        }

        // A named certificate that cannot be read is a clear error, not a retry loop.
        var missing = Config(work, new { certFile = work.File("missing.crt"), keyFile = work.File("missing.key") });
        using (var store = RegistryBlobStore.FromConfig(missing, tls))
        await using (var source = await store.OpenAsync(repoBlobUrl, digest, blob.Length))
        {
            var error = await Assert.ThrowsAsync<RegistryException>(async () => await source.ReadAtAsync(0, new byte[10]));
            Assert.Contains($"client certificate {work.File("missing.crt")}", error.Message, StringComparison.Ordinal);
        }
    }

    private static OverlaybdConfig Config(TempDir work, object certConfig) =>
        OverlaybdConfig.Parse(JsonSerializer.SerializeToUtf8Bytes(new
        {
            // A cache of its own per config: no read may be served from another's cache.
            cacheConfig = new { cacheType = "file", cacheDir = work.File("cache-" + Guid.NewGuid().ToString("N")), cacheSizeGB = 1 },
            credentialConfig = new { mode = "file", path = work.File("cred.json") },
            certConfig,
        }));
}
