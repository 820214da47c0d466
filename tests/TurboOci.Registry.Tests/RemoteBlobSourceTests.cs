using TurboOci.Registry.Cache;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

public sealed class RemoteBlobSourceTests(BlobFixture fixture) : IClassFixture<BlobFixture>
{
    private const int Unit = 1024 * 1024;

    [Fact]
    public async Task EachMissCostsExactlyOneRequestAndConcurrentMissesShareIt()
    {
        using var client = new RegistryClient();
        var options = new RemoteBlobOptions { FetchUnit = 256 * 1024, ReadAheadUnits = 0, Cache = new MemoryRangeCache(256L << 20) };
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length, options);
        var before = await fixture.BlobGetsAsync();
        var random = new Random(3);
        var units = Enumerable.Range(0, 40).Select(_ => random.Next(0, 256)).Distinct().ToList();
        foreach (var unit in units)
        {
            // A read inside one unit: one miss.
            var offset = unit * 256L * 1024 + random.Next(0, 200_000);
            var buffer = new byte[random.Next(1, 50_000)];
            Assert.Equal(buffer.Length, await source.ReadAtAsync(offset, buffer));
            Assert.Equal(fixture.Blob.AsSpan((int)offset, buffer.Length).ToArray(), buffer);
        }

        Assert.Equal(before + units.Count, await fixture.BlobGetsAsync());
        Assert.Equal(units.Count, client.RequestCount); // no HEAD, no retries, nothing else

        // Eight threads missing the same unit at once: one request between them.
        var shared = 200L * 256 * 1024;
        var start = new Barrier(8);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            var buffer = new byte[4096];
            start.SignalAndWait();
            source.ReadAt(shared + 1000, buffer);
            return buffer;
        })));
        Assert.All(results, r => Assert.Equal(fixture.Blob.AsSpan((int)shared + 1000, 4096).ToArray(), r));
        Assert.Equal(before + units.Count + (units.Contains(200) ? 0 : 1), await fixture.BlobGetsAsync());

        // A read spanning four missing adjacent units: one merged request.
        var spanning = new byte[3 * 256 * 1024];
        var spanStart = 100L * 256 * 1024 - 100;
        var beforeSpan = await fixture.BlobGetsAsync();
        Assert.Equal(spanning.Length, await source.ReadAtAsync(spanStart, spanning));
        Assert.Equal(fixture.Blob.AsSpan((int)spanStart, spanning.Length).ToArray(), spanning);
        Assert.Equal(beforeSpan + 1, await fixture.BlobGetsAsync());
    }

    [Fact]
    public async Task SequentialReadsAreReadAheadAndTheTailIsShort()
    {
        using var client = new RegistryClient();
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 4, Cache = new MemoryRangeCache(128L << 20) });
        var copy = new byte[fixture.Blob.Length];
        var chunk = 128 * 1024;
        for (var offset = 0; offset < copy.Length; offset += chunk)
        {
            await source.ReadAtAsync(offset, copy.AsMemory(offset, Math.Min(chunk, copy.Length - offset)));
        }

        Assert.Equal(fixture.Blob, copy);
        await source.DrainAsync();
        var units = (fixture.Blob.Length + Unit - 1) / Unit;
        // Read-ahead fetched units before they were asked for, so every unit was fetched once and only once.
        Assert.Equal(fixture.Blob.Length, source.FetchedBytes);
        Assert.True(source.FetchRequests <= units);
        Assert.Equal(0, await source.ReadAtAsync(fixture.Blob.Length, new byte[10]));
        Assert.Equal(5, await source.ReadAtAsync(fixture.Blob.Length - 5, new byte[10]));
    }

    [Fact]
    public async Task SequentialReadWithoutCacheFetchesEachByteOnceInFewGrowingRequests()
    {
        // Default options, no cache: read-ahead units are held until read, so none is fetched twice, and the
        // window grows (8 units, then 16, 32 and 64) so a long read costs a handful of large requests.
        using var client = new RegistryClient();
        var before = await fixture.BlobGetsAsync();
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length);
        var copy = new byte[fixture.Blob.Length];
        await ReadAllInChunks(source, copy, 1024 * 1024);
        Assert.Equal(fixture.Blob, copy);
        await source.DrainAsync();
        Assert.Equal(fixture.Blob.Length, source.FetchedBytes);
        var units = (fixture.Blob.Length + Unit - 1) / Unit;
        Assert.InRange(source.FetchRequests, 3, units / 5);
        Assert.Equal(source.FetchRequests, await fixture.BlobGetsAsync() - before);
        var gets = fixture.Registry.RequestsFor($"/v2/{BlobFixture.Repository}/blobs/{fixture.Digest}", "GET").Skip(before).ToList();
        // The first two reads miss (one unit each); the rest is read-ahead: never a request smaller than the first
        // window, and the grown window's requests are larger. The registry logs requests as they finish, not in order.
        var sizes = gets.Select(g => g.Bytes).Order().ToList();
        Assert.True(sizes.Count(size => size == Unit) == 2 && sizes.Skip(2).All(size => size >= 8L * Unit) && sizes.Max() >= 16L * Unit,
            $"request sizes {string.Join(",", sizes)}");
    }

    [Fact]
    public async Task ALongSequentialReadGoesOutInFullSizeRequestsOnly()
    {
        // 257 units of 256 KiB: the window grows 8, 16, 32, 64; from then on every refill asks for whole requests of
        // MaxUnitsPerRequest units (registries pay milliseconds per request), never for the odd unit left over.
        const int SmallUnit = 256 * 1024;
        using var client = new RegistryClient();
        var before = await fixture.BlobGetsAsync();
        var options = new RemoteBlobOptions { FetchUnit = SmallUnit };
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length, options);
        var copy = new byte[fixture.Blob.Length];
        await ReadAllInChunks(source, copy, SmallUnit);
        Assert.Equal(fixture.Blob, copy);
        await source.DrainAsync();
        Assert.Equal(fixture.Blob.Length, source.FetchedBytes);
        var sizes = fixture.Registry.RequestsFor($"/v2/{BlobFixture.Repository}/blobs/{fixture.Digest}", "GET").Skip(before).Select(g => g.Bytes).ToList();
        var full = (long)options.MaxUnitsPerRequest * SmallUnit;
        // Order-free (the registry logs requests as they finish): the two first reads miss one unit each, the growing
        // window's first requests (8, then about 16 and 32 units) and the blob's tail are smaller, and every other
        // request is whole. Refills that sent their leftover unit alone would add one-unit requests.
        var shown = string.Join(",", sizes.Select(size => size / SmallUnit));
        Assert.True(sizes.Count(size => size == SmallUnit) == 2, $"request sizes in units: {shown}");
        Assert.True(sizes.Count(size => size == full) >= 5 && sizes.Count(size => size != full) <= 6, $"request sizes in units: {shown}");
    }

    [Fact]
    public async Task CacheCapacityHoldsAndLeastRecentlyUsedGoesFirst()
    {
        using var temp = new TempDir();
        using var client = new RegistryClient();
        var capacity = 8L * (Unit + RangeCacheEntryHeader.Size);
        var disk = new DiskRangeCache(temp.File("cache"), capacity);
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 0, Cache = disk });
        var buffer = new byte[100];
        for (var unit = 0; unit < 30; unit++)
        {
            await source.ReadAtAsync(unit * (long)Unit, buffer);
            Assert.Equal(fixture.Blob.AsSpan(unit * Unit, 100).ToArray(), buffer);
            // Keep unit 0 hot: it must survive eviction.
            await Task.Delay(5);
            source.ReadAt(0, buffer);
            await source.DrainAsync();
            Assert.True(disk.GetStats().Bytes <= capacity, $"cache holds {disk.GetStats().Bytes} bytes, limit {capacity}");
        }

        var stats = disk.GetStats();
        Assert.True(stats.Evictions > 0);
        Assert.Contains(disk.Scan(), e => e.Offset == 0);
        Assert.DoesNotContain(disk.Scan(), e => e.Offset == Unit); // unit 1 was used once, long ago
    }

    [Fact]
    public async Task CorruptOrTornCacheEntriesAreRefetchedNeverServed()
    {
        using var temp = new TempDir();
        using var client = new RegistryClient();
        var disk = new DiskRangeCache(temp.File("cache"), 1L << 30);
        var options = new RemoteBlobOptions { FetchUnit = Unit, ReadAheadUnits = 0, Cache = disk };
        var buffer = new byte[Unit * 6];
        await using (var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length, options))
        {
            await source.ReadAtAsync(0, buffer);
        }

        var entries = disk.Scan().OrderBy(e => e.Offset).ToList();
        Assert.Equal(6, entries.Count);
        // Damage four of six entries the ways a crash or a bad disk would.
        FlipByte(entries[0].Path, RangeCacheEntryHeader.Size + 77_777);      // data bit rot
        File.WriteAllBytes(entries[1].Path, File.ReadAllBytes(entries[1].Path)[..(Unit / 2)]); // torn write
        FlipByte(entries[2].Path, 9);                                          // header offset
        File.WriteAllBytes(entries[3].Path, []);                               // empty file
        var before = await fixture.BlobGetsAsync();
        Array.Clear(buffer);
        await using (var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length, options))
        {
            await source.ReadAtAsync(0, buffer);
            Assert.Equal(1, source.FetchRequests);
        }

        Assert.Equal(fixture.Blob.AsSpan(0, buffer.Length).ToArray(), buffer);
        // The four damaged units are adjacent, so they come back in one merged request.
        Assert.Equal(before + 1, await fixture.BlobGetsAsync());
        Assert.Equal(4, disk.GetStats().CorruptEntries);
        Assert.Equal((6, 0), disk.Verify());
    }

    [Fact]
    public async Task ProcessKilledMidDownloadLeavesNoTornRange()
    {
        using var temp = new TempDir();
        var cacheDir = temp.File("cache");
        var childUnit = 256 * 1024;
        await CacheChild.RunAndKillAfterAsync(40, fixture.Image, fixture.Digest, fixture.Blob.Length, cacheDir, childUnit);

        // Restart: whatever the killed process left is either a complete, verified range or nothing.
        var disk = new DiskRangeCache(cacheDir, 1L << 30);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cacheDir, "tmp")));
        var entries = disk.Scan().ToList();
        Assert.True(entries.Count >= 40, $"only {entries.Count} ranges were cached");
        foreach (var entry in entries)
        {
            var bytes = File.ReadAllBytes(entry.Path);
            Assert.Equal(fixture.Blob.AsSpan((int)entry.Offset, entry.Length).ToArray(), bytes.AsSpan(RangeCacheEntryHeader.Size).ToArray());
        }

        using var client = new RegistryClient();
        var before = await fixture.BlobGetsAsync();
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = childUnit, ReadAheadUnits = 0, Cache = disk });
        var copy = new byte[fixture.Blob.Length];
        await ReadAllInChunks(source, copy, childUnit);
        Assert.Equal(fixture.Blob, copy);
        var units = (fixture.Blob.Length + childUnit - 1) / childUnit;
        Assert.Equal(units - entries.Count, await fixture.BlobGetsAsync() - before);
    }

    [Fact]
    public async Task SpanVerifierCatchesWrongBytesAndRefetches()
    {
        const int unit = 64 * 1024;
        var verifier = UnitSha256Verifier.Compute(fixture.Blob, unit);
        var corruptions = 0;
        await using var proxy = new FaultProxy(fixture.Registry.BaseUrl, (request, _) =>
            request.Method == "GET" && request.Path.Contains("/blobs/", StringComparison.Ordinal) && Interlocked.Increment(ref corruptions) <= 2
                ? new Fault.CorruptByte(1000)
                : null);
        var log = new TestLog();
        using var client = new RegistryClient(new RegistryClientOptions { Log = log.Add });
        var image = ImageReference.Parse($"{proxy.Host}/{BlobFixture.Repository}");
        await using (var source = await RemoteBlobSource.OpenAsync(client, image, fixture.Digest, fixture.Blob.Length,
                         new RemoteBlobOptions { FetchUnit = unit, ReadAheadUnits = 0, Verifier = verifier }))
        {
            var buffer = new byte[unit];
            await source.ReadAtAsync(5 * unit, buffer);
            Assert.Equal(fixture.Blob.AsSpan(5 * unit, unit).ToArray(), buffer);
            Assert.Equal(3, source.FetchRequests);
            Assert.Contains("failed verification", log.Text, StringComparison.Ordinal);
        }

        // Wrong bytes every time: the read fails with a clear error instead of returning them.
        proxy.Plan = (request, _) => request.Method == "GET" ? new Fault.CorruptByte(10) : null;
        await using (var source = await RemoteBlobSource.OpenAsync(client, image, fixture.Digest, fixture.Blob.Length,
                         new RemoteBlobOptions { FetchUnit = unit, ReadAheadUnits = 0, Verifier = verifier }))
        {
            var error = await Assert.ThrowsAsync<RangeVerificationException>(() => source.ReadAtAsync(7 * unit, new byte[100]).AsTask());
            Assert.Contains("did not match", error.Message, StringComparison.Ordinal);
        }
    }

    private static async Task ReadAllInChunks(RemoteBlobSource source, byte[] copy, int chunk)
    {
        for (var offset = 0; offset < copy.Length; offset += chunk)
        {
            await source.ReadAtAsync(offset, copy.AsMemory(offset, Math.Min(chunk, copy.Length - offset)));
        }
    }

    private static void FlipByte(string path, long offset)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        var one = new byte[1];
        RandomAccess.Read(handle, one, offset);
        one[0] ^= 0x5A;
        RandomAccess.Write(handle, one, offset);
    }
}
