using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>
/// One registry with one deterministic pseudo-random blob, pushed once for a whole test class. 64 MiB keeps
/// these tests fast; the 500 MB "Done when" reads are in LargeBlobTests.
/// </summary>
public sealed class BlobFixture : IAsyncLifetime
{
    public const int BlobSize = 64 * 1024 * 1024 + 12345; // not a multiple of any unit: the last unit is short
    public const string Repository = "lazy/blob";

    public RegistryServer Registry { get; private set; } = null!;

    public byte[] Blob { get; } = Generate(BlobSize, seed: 500);

    public Digest Digest { get; private set; }

    public ImageReference Image => ImageReference.Parse($"{Registry.Host}/{Repository}");

    public static byte[] Generate(int size, int seed)
    {
        var blob = new byte[size];
        new Random(seed).NextBytes(blob);
        return blob;
    }

    public async Task InitializeAsync()
    {
        Registry = await RegistryServer.StartAsync();
        Digest = Digest.Parse(await Registry.PushBlobAsync(Repository, Blob));
    }

    public async Task DisposeAsync() => await Registry.DisposeAsync();

    /// <summary>The registry-side GETs of the blob (the access log, not our own counters).</summary>
    public async Task<int> BlobGetsAsync()
    {
        await Registry.SettleAccessLogAsync();
        return Registry.RequestsFor($"/v2/{Repository}/blobs/{Digest}", "GET").Count;
    }
}
