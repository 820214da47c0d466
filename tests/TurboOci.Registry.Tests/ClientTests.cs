using System.Security.Cryptography;
using TurboOci.Storage;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>The distribution client against a real docker-registry, under each auth scheme.</summary>
public sealed class ClientTests
{
    [Theory]
    [InlineData(RegistryAuth.Anonymous)]
    [InlineData(RegistryAuth.Basic)]
    [InlineData(RegistryAuth.Token)]
    public async Task PushesAndReadsBlobsAndManifests(RegistryAuth auth)
    {
        await using var registry = await RegistryServer.StartAsync(auth);
        var log = new TestLog();
        using var client = log.ClientFor(registry);
        var image = ImageReference.Parse($"{registry.Host}/team/app:v1");
        var small = RandomNumberGenerator.GetBytes(100_000);
        var large = RandomNumberGenerator.GetBytes(700_000);
        var smallDigest = Digest.Sha256(small);
        var largeDigest = Digest.Sha256(large);

        Assert.True(await client.PushBlobAsync(image, smallDigest, small.Length, () => new MemoryStream(small)));
        // Chunked: 700 kB in 256 kB PATCHes.
        Assert.True(await client.PushBlobAsync(image, largeDigest, large.Length, () => new MemoryStream(large), chunkSize: 256 * 1024));
        Assert.False(await client.PushBlobAsync(image, smallDigest, small.Length, () => new MemoryStream(small)), "an existing blob is not uploaded again");
        await registry.SettleAccessLogAsync();
        Assert.Equal(3, registry.RequestsFor("/v2/team/app/blobs/uploads/", "PATCH").Count(r => r.Status == 202));

        Assert.Equal(large.Length, await client.HeadBlobAsync(image, largeDigest));
        Assert.Null(await client.HeadBlobAsync(image, Digest.Sha256("absent"u8)));
        var range = new byte[50_000];
        await client.ReadBlobRangeAsync(image, largeDigest, 600_000, range);
        Assert.Equal(large.AsSpan(600_000, 50_000).ToArray(), range);
        var whole = new MemoryStream();
        Assert.Equal(large.Length, await client.DownloadBlobAsync(image, largeDigest, whole));
        Assert.Equal(large, whole.ToArray());

        // A second repository gets the blob by cross-repository mount, without an upload.
        var other = ImageReference.Parse($"{registry.Host}/team/other:v1");
        Assert.True(await client.PushBlobAsync(other, largeDigest, large.Length, () => throw new InvalidOperationException("must mount, not upload"), mountFrom: "team/app"));
        Assert.Equal(large.Length, await client.HeadBlobAsync(other, largeDigest));

        var config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"u8.ToArray();
        await client.PushBlobAsync(image, Digest.Sha256(config), config.Length, () => new MemoryStream(config));
        var manifest = ManifestContent.From(new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Sha256(config).ToString(), Size = config.Length },
            Layers = [new Descriptor { MediaType = "application/vnd.oci.image.layer.v1.tar+gzip", Digest = largeDigest.ToString(), Size = large.Length }],
        }, MediaTypes.OciManifest);
        await client.PutManifestAsync(image, manifest);
        var fetched = await client.GetManifestAsync(image);
        Assert.Equal(manifest.Digest, fetched.Digest);
        Assert.Equal(manifest.Bytes.ToArray(), fetched.Bytes.ToArray());
        Assert.Equal(largeDigest.ToString(), fetched.AsManifest().Layers.Single().Digest);
        Assert.Contains("v1", await client.ListTagsAsync(image));

        // An index for two platforms resolves to the one asked for.
        var index = ManifestContent.From(new ImageIndex
        {
            MediaType = MediaTypes.OciIndex,
            Manifests =
            [
                manifest.Descriptor with { Platform = new Platform { Os = "linux", Architecture = "s390x" }, Digest = manifest.Digest.ToString() },
                manifest.Descriptor with { Platform = new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" } },
            ],
        }, MediaTypes.OciIndex);
        await client.PutManifestAsync(image.WithTag("multi"), index);
        var resolved = await client.ResolveImageAsync(image.WithTag("multi"), Platform.Parse("linux/arm64"));
        Assert.Equal(manifest.Digest, resolved.Content.Digest);
        Assert.Equal(index.Digest, resolved.Index!.Digest);
        await Assert.ThrowsAsync<RegistryException>(() => client.ResolveImageAsync(image.WithTag("multi"), Platform.Parse("windows/amd64")));

        if (auth == RegistryAuth.Token)
        {
            // Tokens are cached per scope: a handful of scopes, not one token per request.
            Assert.InRange(registry.Tokens!.IssuedScopes.Count, 1, 6);
            Assert.Equal(registry.Tokens.IssuedScopes.Count, client.TokenRequestCount);
        }

        log.AssertNoSecrets(registry);
    }

    [Theory]
    [InlineData(RegistryAuth.Basic)]
    [InlineData(RegistryAuth.Token)]
    public async Task WrongPasswordFailsClearlyWithoutLeakingIt(RegistryAuth auth)
    {
        await using var registry = await RegistryServer.StartAsync(auth);
        var blob = RandomNumberGenerator.GetBytes(1000);
        var digest = await registry.PushBlobAsync("secret/repo", blob);
        var log = new TestLog();
        const string wrong = "wrong-password-7f3a";
        using var client = log.ClientFor(registry, password: wrong);
        var error = await Assert.ThrowsAnyAsync<RegistryException>(() =>
            client.HeadBlobAsync(ImageReference.Parse($"{registry.Host}/secret/repo"), Digest.Parse(digest)));
        Assert.IsAssignableFrom<RegistryAuthenticationException>(error);
        Assert.Contains("secret/repo", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, log.Text, StringComparison.Ordinal);
        log.AssertNoSecrets(registry, error.ToString());

        // Anonymous access to a protected registry is refused the same way.
        using var anonymous = new RegistryClient();
        await Assert.ThrowsAsync<RegistryAuthenticationException>(() =>
            anonymous.HeadBlobAsync(ImageReference.Parse($"{registry.Host}/secret/repo"), Digest.Parse(digest)));
    }

    [Fact]
    public async Task ExpiredTokenIsReplaced()
    {
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Token);
        var blob = RandomNumberGenerator.GetBytes(5000);
        var digest = Digest.Parse(await registry.PushBlobAsync("exp/repo", blob));
        registry.Tokens!.Lifetime = TimeSpan.FromSeconds(2); // our cache keeps it 1 s; the registry honours exp
        var log = new TestLog();
        using var client = log.ClientFor(registry);
        var image = ImageReference.Parse($"{registry.Host}/exp/repo");
        var buffer = new byte[100];
        await client.ReadBlobRangeAsync(image, digest, 10, buffer);
        var before = registry.Tokens.IssuedScopes.Count;
        await Task.Delay(TimeSpan.FromSeconds(3));
        await client.ReadBlobRangeAsync(image, digest, 20, buffer);
        Assert.Equal(blob.AsSpan(20, 100).ToArray(), buffer);
        Assert.True(registry.Tokens.IssuedScopes.Count > before, "an expired token must be replaced");
        log.AssertNoSecrets(registry);
    }

    [Fact]
    public async Task ManifestWithWrongDigestIsRejected()
    {
        await using var registry = await RegistryServer.StartAsync();
        using var client = new RegistryClient();
        var image = ImageReference.Parse($"{registry.Host}/m/repo");
        var config = "{}"u8.ToArray();
        await client.PushBlobAsync(image, Digest.Sha256(config), config.Length, () => new MemoryStream(config));
        var manifest = ManifestContent.From(new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciEmpty, Digest = Digest.Sha256(config).ToString(), Size = 2 },
        }, MediaTypes.OciManifest);
        await client.PutManifestAsync(image, manifest);
        var bogus = Digest.Sha256("not the manifest"u8);
        // The registry answers 404 for an unknown digest; a proxy that swaps the body is caught by digest checks.
        Assert.Null(await client.TryGetManifestAsync(image.WithDigest(bogus)));
        await using var proxy = new FaultProxy(registry.BaseUrl, (request, _) =>
            request.Path.Contains("/manifests/", StringComparison.Ordinal) ? new Fault.CorruptByte(3) : null);
        using var viaProxy = new RegistryClient(new RegistryClientOptions { InsecureRegistries = new HashSet<string> { proxy.Host } });
        var proxied = ImageReference.Parse($"{proxy.Host}/m/repo:latest");
        await Assert.ThrowsAsync<TurboOciFormatException>(() => viaProxy.GetManifestAsync(proxied));
        await Assert.ThrowsAsync<TurboOciFormatException>(() => viaProxy.GetManifestAsync(proxied.WithDigest(manifest.Digest)));
    }
}
