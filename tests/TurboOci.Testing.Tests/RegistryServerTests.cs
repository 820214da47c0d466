using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using TurboOci.Testing.Registry;

namespace TurboOci.Testing.Tests;

public sealed class RegistryServerTests
{
    [Theory]
    [InlineData(RegistryAuth.Anonymous)]
    [InlineData(RegistryAuth.Basic)]
    [InlineData(RegistryAuth.Token)]
    public async Task PushedBlobRangeComesBackByteForByte(RegistryAuth auth)
    {
        var blob = new byte[300_000];
        new Random(7).NextBytes(blob);
        string root;
        await using (var registry = await RegistryServer.StartAsync(auth))
        {
            root = registry.Root;
            var digest = await registry.PushBlobAsync("harness/self-test", blob);
            Assert.Equal("sha256:" + Convert.ToHexString(SHA256.HashData(blob)).ToLowerInvariant(), digest);

            using var client = await registry.CreateAuthorizedClientAsync("harness/self-test");
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/harness/self-test/blobs/{digest}");
            request.Headers.Range = new RangeHeaderValue(100_000, 165_535);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal(blob.AsSpan(100_000, 65_536).ToArray(), await response.Content.ReadAsByteArrayAsync());

            // Without credentials a protected registry refuses, so auth is really on.
            using var anonymous = new HttpClient();
            using var refused = await anonymous.GetAsync($"{registry.BaseUrl}/v2/harness/self-test/blobs/{digest}");
            Assert.Equal(auth == RegistryAuth.Anonymous ? HttpStatusCode.OK : HttpStatusCode.Unauthorized, refused.StatusCode);

            await registry.SettleAccessLogAsync();
            Assert.Contains(registry.RequestsFor($"/v2/harness/self-test/blobs/{digest}", "GET"), r => r.Status == 206);
        }

        Assert.False(Directory.Exists(root), "storage must be deleted on dispose");
    }

    [Fact]
    public async Task FaultProxyForwardsAndInjects()
    {
        await using var registry = await RegistryServer.StartAsync();
        var blob = RandomNumberGenerator.GetBytes(10_000);
        var digest = await registry.PushBlobAsync("harness/proxy", blob);
        await using var proxy = new FaultProxy(registry.BaseUrl, (_, n) => n switch
        {
            1 => new Fault.Status(503),
            2 => new Fault.CorruptByte(5),
            3 => new Fault.Truncate(100),
            _ => null,
        });
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        var url = $"{proxy.BaseUrl}/v2/harness/proxy/blobs/{digest}";
        using (var first = await client.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        }

        var corrupted = await client.GetByteArrayAsync(url);
        Assert.Equal(blob.Length, corrupted.Length);
        Assert.Equal((byte)(blob[5] ^ 0xFF), corrupted[5]);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetByteArrayAsync(url));
        Assert.Equal(blob, await client.GetByteArrayAsync(url));
    }
}
