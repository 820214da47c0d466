using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>
/// One registry holding one 500 MB blob (issue 7's "Done when" size), pushed once for the test class. The
/// blob is a position-dependent pattern, so neither the test nor its child processes ever hold it in memory:
/// expected bytes are regenerated for each read.
/// </summary>
public sealed class LargeBlobFixture : IAsyncLifetime
{
    public const long BlobSize = 500_000_000; // not a multiple of 1 MiB: the last unit is short
    public const string Repository = "lazy/large";

    public RegistryServer Registry { get; private set; } = null!;

    public PatternBlob Blob { get; } = new(BlobSize, seed: 0x7E57_B10B);

    public Digest Digest { get; private set; }

    public ImageReference Image => ImageReference.Parse($"{Registry.Host}/{Repository}");

    public async Task InitializeAsync()
    {
        Registry = await RegistryServer.StartAsync();
        Digest = Digest.Parse(Blob.Digest);
        using var client = new RegistryClient();
        // One monolithic PUT streamed from the pattern: no 500 MB array anywhere.
        await client.PushBlobAsync(Image, Digest, BlobSize, Blob.OpenRead, chunkSize: int.MaxValue);
    }

    public async Task DisposeAsync() => await Registry.DisposeAsync();

    /// <summary>The registry-side GETs of the blob (the access log, not our own counters).</summary>
    public async Task<int> BlobGetsAsync()
    {
        await Registry.SettleAccessLogAsync();
        return Registry.RequestsFor($"/v2/{Repository}/blobs/{Digest}", "GET").Count;
    }
}
