using System.Security.Cryptography;
using TurboOci.Registry.Cache;

namespace TurboOci.Registry.Tests;

/// <summary>
/// Fetched units live in pooled arrays that are reused as soon as nobody holds them. These tests make reuse
/// happen all the time (a tiny memory cache evicting constantly, read-ahead tables dropping units, many
/// readers at once) and check every byte every reader got.
/// </summary>
public sealed class PooledUnitTests : IClassFixture<BlobFixture>
{
    private readonly BlobFixture _fixture;

    public PooledUnitTests(BlobFixture fixture)
    {
        _fixture = fixture;
        FetchedUnit.PoisonReturnedArrays = true; // a read after release sees 0xDB bytes, deterministically
    }

    [Fact]
    public void AUnitIsNeverReachableAgainOnceItsLastReferenceIsGone()
    {
        var unit = FetchedUnit.Rent(4096, references: 1);
        Assert.True(unit.TryAcquire());
        unit.Release();
        unit.Release(); // the last one: the array went back to the pool
        Assert.False(unit.TryAcquire());
        Assert.Throws<InvalidOperationException>(unit.Release);

        using var cache = new MemoryRangeCache(1 << 20);
        var digest = Digest.Sha256([1]);
        var cached = FetchedUnit.Rent(4096, references: 1);
        cache.Store(digest, 0, cached);
        cached.Release(); // only the cache holds it now
        var held = cache.TryAcquireUnit(digest, 0, 4096);
        Assert.Same(cached, held);
        cache.Store(digest, 0, FetchedUnit.Wrap(new byte[4096])); // replaced: the cache lets go of its reference
        Assert.Null(cache.TryAcquireUnit(digest, 0, 8192)); // wrong length: not served
        Assert.True(cache.TryAcquireUnit(digest, 0, 4096) is { } replacement && replacement != cached);
        Assert.True(TryAcquireAndRelease(cached)); // this reader's reference keeps it alive after eviction
        held!.Release();
        Assert.True(SpinWait.SpinUntil(() => !TryAcquireAndRelease(cached), TimeSpan.FromSeconds(10)), "evicted unit was never released");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ConcurrentReadersGetTheRightBytesWhileTheCacheEvictsAndBuffersAreReused(bool withCache)
    {
        const int unit = 16 * 1024;
        var fixture = _fixture;
        var blob = fixture.Blob.AsMemory(0, 8 * 1024 * 1024 + 777); // reads stay inside; the source sees the whole blob
        using var client = new RegistryClient();
        // Four units of cache for hundreds of units read: nearly every store evicts, and evicted arrays are reused at once.
        // Without a cache and read-ahead, a unit's only holders are its fetch and the readers waiting for it.
        using var cache = new MemoryRangeCache(4 * unit);
        await using var source = await RemoteBlobSource.OpenAsync(client, fixture.Image, fixture.Digest, fixture.Blob.Length,
            new RemoteBlobOptions { FetchUnit = unit, ReadAheadUnits = withCache ? 4 : 0, MaxReadAheadUnits = 16, MaxUnitsPerRequest = 4, Cache = withCache ? cache : null });
        var wrong = 0;
        var bytesRead = 0L;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(thread => Task.Run(async () =>
        {
            var random = new Random(thread);
            var buffer = new byte[3 * unit];
            for (var i = 0; i < 120; i++)
            {
                // Even threads stream through a stretch (read-ahead); odd ones jump around inside the same stretch.
                long offset = thread % 2 == 0 ? (i * (long)buffer.Length / 2 + thread * 100_000L) % (blob.Length - buffer.Length) : random.NextInt64(0, blob.Length - buffer.Length);
                var length = random.Next(1, buffer.Length);
                buffer.AsSpan().Fill(0xA5);
                var read = await source.ReadAtAsync(offset, buffer.AsMemory(0, length));
                Interlocked.Add(ref bytesRead, read);
                if (read != length || !buffer.AsSpan(0, length).SequenceEqual(blob.Span.Slice((int)offset, length)))
                {
                    Interlocked.Increment(ref wrong);
                }

                // The synchronous path too.
                var small = new byte[random.Next(1, 5000)];
                var at = random.NextInt64(0, blob.Length - small.Length);
                if (source.ReadAt(at, small) != small.Length || !small.AsSpan().SequenceEqual(blob.Span.Slice((int)at, small.Length)))
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        })));
        await source.DrainAsync();
        Assert.Equal(0, wrong);
        Assert.True(bytesRead > 10L * 1024 * 1024, $"only {bytesRead} bytes read");
        Assert.True(source.FetchedBytes > 4L * 1024 * 1024, "the tiny cache should have forced refetches");

        // After all that churn, a whole stretch read back in one go hashes like the blob.
        var copy = new byte[1024 * 1024];
        Assert.Equal(copy.Length, await source.ReadAtAsync(3 * 1024 * 1024 + 5, copy));
        Assert.Equal(SHA256.HashData(blob.Span.Slice(3 * 1024 * 1024 + 5, copy.Length)), SHA256.HashData(copy));
    }

    private static bool TryAcquireAndRelease(FetchedUnit unit)
    {
        if (!unit.TryAcquire())
        {
            return false;
        }

        unit.Release();
        return true;
    }
}
