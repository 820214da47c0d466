using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>
/// A fault-injecting proxy between the client and a real registry: every read either returns the blob's
/// bytes or fails with a clear error once the retry budget is spent. Never wrong data.
/// </summary>
public sealed class FaultTests(BlobFixture fixture) : IClassFixture<BlobFixture>
{
    private const int Unit = 256 * 1024;

    public static TheoryData<string> RecoverableFaults => ["503 burst", "429 Retry-After", "reset mid-body", "truncated body", "stall", "500 then reset then truncate"];

    [Theory]
    [MemberData(nameof(RecoverableFaults))]
    public async Task TransientFaultsAreRetriedToCorrectData(string scenario)
    {
        var blobGets = 0;
        Fault? FaultFor(int n) => scenario switch
        {
            "503 burst" => n <= 3 ? new Fault.Status(503) : null,
            "429 Retry-After" => n == 1 ? new Fault.Status(429, RetryAfterSeconds: 1) : null,
            "reset mid-body" => n <= 2 ? new Fault.ResetAfter(10_000) : null,
            "truncated body" => n == 1 ? new Fault.Truncate(Unit / 2) : null,
            "stall" => n == 1 ? new Fault.Stall(TimeSpan.FromSeconds(8)) : null,
            _ => n switch { 1 => new Fault.Status(500), 2 => new Fault.ResetAfter(1), 3 => new Fault.Truncate(Unit - 1), _ => null },
        };
        await using var proxy = new FaultProxy(fixture.Registry.BaseUrl, (request, _) =>
            request.Method == "GET" && request.Path.Contains("/blobs/", StringComparison.Ordinal) ? FaultFor(Interlocked.Increment(ref blobGets)) : null);
        var log = new TestLog();
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Log = log.Add,
            // Long enough for a loaded CI machine, shorter than the injected stall.
            AttemptTimeout = TimeSpan.FromSeconds(4),
            Retry = new RetryPolicy { MaxAttempts = 8, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        });
        var image = ImageReference.Parse($"{proxy.Host}/{BlobFixture.Repository}");
        await using var source = await RemoteBlobSource.OpenAsync(client, image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 0 });
        var buffer = new byte[Unit];
        await source.ReadAtAsync(3L * Unit, buffer);
        Assert.Equal(fixture.Blob.AsSpan(3 * Unit, Unit).ToArray(), buffer);
        Assert.True(blobGets >= 2, "the fault must have been hit and retried");
        Assert.Contains("retry", log.Text, StringComparison.Ordinal);
        if (scenario == "429 Retry-After")
        {
            Assert.Contains("in 1000 ms", log.Text, StringComparison.Ordinal); // the server's delay, not our backoff
        }

        // A whole-blob download cut short resumes from where it broke and checks the digest.
        blobGets = 0;
        proxy.Plan = (request, _) => request.Method == "GET" && Interlocked.Increment(ref blobGets) == 1 ? new Fault.Truncate(5_000_000) : null;
        var whole = new MemoryStream();
        // The default attempt timeout: the proxy buffers the whole 64 MiB before answering, which on a loaded
        // machine can take longer than the short timeout above (and a timeout retry would not be the resume we check).
        using var downloader = new RegistryClient(new RegistryClientOptions { Retry = new RetryPolicy { BaseDelay = TimeSpan.FromMilliseconds(10) } });
        await downloader.DownloadBlobAsync(image, fixture.Digest, whole);
        Assert.Equal(fixture.Blob.Length, whole.Length);
        Assert.True(fixture.Blob.AsSpan().SequenceEqual(whole.GetBuffer().AsSpan(0, (int)whole.Length)));
        Assert.Contains(proxy.Requests, r => r.Header("Range") == "bytes=5000000-");
    }

    [Fact]
    public async Task AMergedFetchCutMidBodyResumesAfterTheUnitsAlreadyHandedOut()
    {
        // Four missing units in one request; the body ends two and a half units in. The two complete
        // units were already given to the reader: the retry asks only for the rest and never rewrites them.
        var gets = 0;
        await using var proxy = new FaultProxy(fixture.Registry.BaseUrl, (request, _) =>
            request.Method == "GET" && Interlocked.Increment(ref gets) == 1 ? new Fault.Truncate(2 * Unit + Unit / 2) : null);
        using var client = new RegistryClient(new RegistryClientOptions { Retry = new RetryPolicy { BaseDelay = TimeSpan.FromMilliseconds(10) } });
        var image = ImageReference.Parse($"{proxy.Host}/{BlobFixture.Repository}");
        await using var source = await RemoteBlobSource.OpenAsync(client, image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 0 });
        var start = 40L * Unit;
        var buffer = new byte[4 * Unit];
        await source.ReadAtAsync(start, buffer);
        Assert.Equal(fixture.Blob.AsSpan((int)start, buffer.Length).ToArray(), buffer);
        var ranges = proxy.Requests.Where(r => r.Method == "GET").Select(r => r.Header("Range")).ToList();
        Assert.Equal([$"bytes={start}-{start + 4 * Unit - 1}", $"bytes={start + 2 * Unit}-{start + 4 * Unit - 1}"], ranges);
        Assert.Equal(1, source.FetchRequests); // one fetch, resumed inside the client
    }

    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(-1)] // connection reset every time
    public async Task PersistentFaultsFailClearlyAfterTheBudget(int status)
    {
        await using var proxy = new FaultProxy(fixture.Registry.BaseUrl, (request, _) =>
            request.Method != "GET" ? null : status > 0 ? new Fault.Status(status) : new Fault.ResetAfter(100));
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Retry = new RetryPolicy { MaxAttempts = 4, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) },
        });
        var image = ImageReference.Parse($"{proxy.Host}/{BlobFixture.Repository}");
        await using var source = await RemoteBlobSource.OpenAsync(client, image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 0 });
        var buffer = new byte[1000];
        var error = await Assert.ThrowsAsync<RegistryException>(() => source.ReadAtAsync(0, buffer).AsTask());
        Assert.Contains("failed after 4 attempt(s)", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, proxy.Requests.Count(r => r.Method == "GET"));
        Assert.All(buffer, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task RetryAfterLongerThanAllowedFailsInsteadOfWaiting()
    {
        await using var proxy = new FaultProxy(fixture.Registry.BaseUrl, (_, _) => new Fault.Status(429, RetryAfterSeconds: 3600));
        using var client = new RegistryClient(new RegistryClientOptions { Retry = new RetryPolicy { MaxRetryAfter = TimeSpan.FromSeconds(5) } });
        var error = await Assert.ThrowsAsync<RegistryException>(() =>
            client.ReadBlobRangeAsync(ImageReference.Parse($"{proxy.Host}/{BlobFixture.Repository}"), fixture.Digest, 0, new byte[10]));
        Assert.Contains("429", error.Message, StringComparison.Ordinal);
        Assert.Single(proxy.Requests);
    }

    [Fact]
    public async Task RedirectsToAnotherHostCarryNoCredentials()
    {
        await using var registry = await RegistryServer.StartAsync(RegistryAuth.Basic);
        var blob = BlobFixture.Generate(300_000, seed: 9);
        var digest = Digest.Parse(await registry.PushBlobAsync("redir/repo", blob));

        // "Blob storage" on another host name (localhost, not 127.0.0.1) serving byte ranges, like a CDN.
        var storageAuthorizations = new System.Collections.Concurrent.ConcurrentQueue<string?>();
        await using var storage = new LoopbackHttpServer(async (request, stream, _, token) =>
        {
            storageAuthorizations.Enqueue(request.Header("Authorization"));
            var range = System.Net.Http.Headers.RangeHeaderValue.Parse(request.Header("Range")!).Ranges.Single();
            var from = (int)range.From!.Value;
            var to = (int)range.To!.Value;
            await LoopbackHttpServer.WriteResponseAsync(stream, 206, "Partial Content",
                [new("Content-Range", $"bytes {from}-{to}/{blob.Length}")], blob.AsMemory(from, to - from + 1), token);
            return true;
        });
        await using var front = new FaultProxy(registry.BaseUrl, (request, _) =>
            // Like a real registry: authenticate first (401 from upstream), then redirect to storage.
            request.Method == "GET" && request.Path.Contains("/blobs/sha256", StringComparison.Ordinal) && request.Header("Authorization") is not null
                ? new Fault.Redirect($"http://localhost:{storage.Port}/storage/{digest.Hex}")
                : null);
        var log = new TestLog();
        using var client = new RegistryClient(new RegistryClientOptions
        {
            Credentials = new StaticCredentialProvider(new RegistryCredential(registry.User, registry.Password!)),
            Log = log.Add,
        });
        var image = ImageReference.Parse($"{front.Host}/redir/repo");
        await using var source = await RemoteBlobSource.OpenAsync(client, image, digest, blob.Length,
            new RemoteBlobOptions { FetchUnit = 64 * 1024, ReadAheadUnits = 0 });
        var buffer = new byte[100_000];
        await source.ReadAtAsync(1000, buffer);
        Assert.Equal(blob.AsSpan(1000, buffer.Length).ToArray(), buffer);
        var frontGets = front.Requests.Count(r => r.Method == "GET");

        // The registry got our credentials; the storage host never did.
        Assert.Contains(front.Requests, r => r.Header("Authorization")?.StartsWith("Basic ", StringComparison.Ordinal) == true);
        Assert.NotEmpty(storageAuthorizations);
        Assert.All(storageAuthorizations, Assert.Null);

        // The redirect target is reused: a later miss goes straight to storage, one request.
        var storageBefore = storageAuthorizations.Count;
        await source.ReadAtAsync(200_000, buffer.AsMemory(0, 50_000));
        Assert.Equal(blob.AsSpan(200_000, 50_000).ToArray(), buffer.AsSpan(0, 50_000).ToArray());
        Assert.Equal(frontGets, front.Requests.Count(r => r.Method == "GET"));
        Assert.Equal(storageBefore + 1, storageAuthorizations.Count);
        log.AssertNoSecrets(registry);
    }
}
