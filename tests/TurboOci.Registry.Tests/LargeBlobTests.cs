using TurboOci.Registry.Cache;
using TurboOci.Testing;

namespace TurboOci.Registry.Tests;

/// <summary>
/// Issue 7's "Done when" over a 500 MB blob: random reads from 8 threads equal the blob's bytes with the
/// disk cache cold, warm, and after a reader process was killed mid-download and a new one took over the
/// same cache; no torn range is ever served and the cache never holds more than its limit.
/// </summary>
public sealed class LargeBlobTests(LargeBlobFixture fixture) : IClassFixture<LargeBlobFixture>
{
    private const int Unit = 1024 * 1024;
    private const int Threads = 8;

    // Far below what the reads touch, so eviction runs all the time.
    private const long Capacity = 160L * (Unit + RangeCacheEntryHeader.Size);

    [Fact]
    public async Task RandomReadsFromEightThreadsEqualTheBlobColdAndWarmWithinTheCacheLimit()
    {
        using var temp = new TempDir();
        using var client = new RegistryClient();
        var disk = new DiskRangeCache(temp.File("cache"), Capacity);
        var options = new RemoteBlobOptions { FetchUnit = Unit, Cache = disk };
        using var watch = new CacheSizeWatch(disk);

        var getsCold = await fixture.BlobGetsAsync();
        long coldFetches;
        await using (var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Size, options))
        {
            await ReadRandomlyAsync(source, readsPerThread: 24, seed: 1);
            await source.DrainAsync();
            coldFetches = source.FetchRequests;
        }

        // Every fetch was one GET at the registry (no HEAD, no retry), and the reads went far past the capacity.
        Assert.Equal(coldFetches, await fixture.BlobGetsAsync() - getsCold);
        Assert.True(disk.GetStats().Evictions > 0, "the reads must have overflowed the cache");

        // Warm: a new source over the same cache serves every cached range without a request...
        var cached = disk.Scan().ToList();
        Assert.True(cached.Count > 50, $"only {cached.Count} ranges cached");
        var getsWarm = await fixture.BlobGetsAsync();
        await using (var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Size,
                         options with { ReadAheadUnits = 0 }))
        {
            await Parallel.ForEachAsync(cached, new ParallelOptions { MaxDegreeOfParallelism = Threads }, async (entry, _) =>
            {
                var buffer = new byte[entry.Length];
                Assert.Equal(entry.Length, await source.ReadAtAsync(entry.Offset, buffer));
                Assert.True(fixture.Blob.Matches(entry.Offset, buffer), $"wrong bytes from the warm cache at {entry.Offset}");
            });
            Assert.Equal(0, source.FetchRequests);
            Assert.Equal(getsWarm, await fixture.BlobGetsAsync());

            // ...and the same random reads as the cold run need fewer fetches than they did cold.
            await ReadRandomlyAsync(source, readsPerThread: 24, seed: 1);
            await source.DrainAsync();
            Assert.InRange(source.FetchRequests, 0, coldFetches - 1);
        }

        Assert.InRange(watch.Largest, 1, Capacity);
        Assert.Equal((disk.Scan().Count(), 0), disk.Verify());
    }

    [Fact]
    public async Task ReaderKilledMidDownloadLeavesNoTornRangeAndTheRestartedReaderIsCorrect()
    {
        using var temp = new TempDir();
        var cacheDir = temp.File("cache");
        // The child reads at random from 8 threads into a cache of the same limit; killed after 60 reads
        // (about 150 MB fetched, so it was evicting too), with fetches and cache writes in flight.
        await CacheChild.RunAndKillAfterAsync(60, fixture.Image, fixture.Digest, fixture.Blob.Size, cacheDir, Unit, Threads, Capacity);

        var disk = new DiskRangeCache(cacheDir, Capacity);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cacheDir, "tmp")));
        var entries = disk.Scan().ToList();
        Assert.True(entries.Count >= 20, $"only {entries.Count} ranges were cached");
        Assert.InRange(entries.Sum(e => e.Bytes), 1, Capacity);
        foreach (var entry in entries)
        {
            // Complete and right, or not there at all: the payload after the header is the blob's bytes.
            var bytes = File.ReadAllBytes(entry.Path);
            Assert.Equal(entry.Length + RangeCacheEntryHeader.Size, bytes.Length);
            Assert.True(fixture.Blob.Matches(entry.Offset, bytes.AsSpan(RangeCacheEntryHeader.Size)), $"cache entry at {entry.Offset} holds wrong bytes");
        }

        // The restarted reader: what the killed one cached costs no request; random reads stay correct.
        using var client = new RegistryClient();
        using var watch = new CacheSizeWatch(disk);
        var before = await fixture.BlobGetsAsync();
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Size,
            new RemoteBlobOptions { FetchUnit = Unit, Cache = disk });
        foreach (var entry in entries)
        {
            var buffer = new byte[entry.Length];
            await source.ReadAtAsync(entry.Offset, buffer);
            Assert.True(fixture.Blob.Matches(entry.Offset, buffer));
        }

        Assert.Equal(0, source.FetchRequests);
        await ReadRandomlyAsync(source, readsPerThread: 8, seed: 2);
        await source.DrainAsync();
        Assert.Equal(source.FetchRequests, await fixture.BlobGetsAsync() - before);
        Assert.InRange(watch.Largest, 1, Capacity);
    }

    private async Task ReadRandomlyAsync(RemoteBlobSource source, int readsPerThread, int seed)
    {
        await Task.WhenAll(Enumerable.Range(0, Threads).Select(thread => Task.Run(async () =>
        {
            var random = new Random(seed * 100 + thread);
            for (var i = 0; i < readsPerThread; i++)
            {
                // Up to two units, at any offset: most reads straddle a unit boundary; some run past the end.
                var offset = i == 0 && thread == 0 ? fixture.Blob.Size - 1000 : random.NextInt64(0, fixture.Blob.Size);
                var buffer = new byte[random.Next(1, 2 * Unit)];
                var read = i % 2 == 0 ? await source.ReadAtAsync(offset, buffer) : source.ReadAt(offset, buffer);
                Assert.Equal((int)Math.Min(buffer.Length, fixture.Blob.Size - offset), read);
                Assert.True(fixture.Blob.Matches(offset, buffer.AsSpan(0, read)), $"wrong bytes at {offset}+{read}");
            }
        })));
    }

    /// <summary>Samples the cache's size on disk while a test runs and keeps the largest value seen.</summary>
    private sealed class CacheSizeWatch : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _sampler;
        private long _largest;

        public CacheSizeWatch(DiskRangeCache cache)
        {
            _sampler = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    var bytes = cache.Scan().Sum(e => e.Bytes);
                    Interlocked.Exchange(ref _largest, Math.Max(Interlocked.Read(ref _largest), bytes));
                    await Task.Delay(10).ConfigureAwait(false);
                }
            });
        }

        public long Largest
        {
            get
            {
                Stop();
                return Interlocked.Read(ref _largest);
            }
        }

        private void Stop()
        {
            _stop.Cancel();
            try
            {
                _sampler.Wait();
            }
            catch (AggregateException e) when (e.InnerException is TaskCanceledException)
            {
            }
        }

        public void Dispose()
        {
            Stop();
            _stop.Dispose();
        }
    }
}
