using Microsoft.Extensions.Caching.Memory;

namespace TurboOci.Registry.Cache;

/// <summary>A cache of fetched blob ranges, keyed by blob digest and range offset.</summary>
public interface IRangeCache
{
    /// <summary>Fills <paramref name="destination"/> with the cached range at <paramref name="offset"/> of exactly its length, or returns false.</summary>
    bool TryRead(Digest blob, long offset, Span<byte> destination);

    /// <summary>Stores a range that was fetched and verified.</summary>
    void Write(Digest blob, long offset, ReadOnlySpan<byte> data);

    /// <summary>A cheap guess whether the range is cached (no data read, no checksum): for read-ahead decisions.</summary>
    bool Contains(Digest blob, long offset, int length);

    /// <summary>
    /// The cached range as an array the caller must not modify, or null. Memory caches hand out their own
    /// copy without copying; the default reads into a new array.
    /// </summary>
    byte[]? TryGet(Digest blob, long offset, int length)
    {
        var data = new byte[length];
        return TryRead(blob, offset, data) ? data : null;
    }
}

/// <summary>
/// Hot ranges in memory with a byte budget (Microsoft.Extensions.Caching.Memory, size = bytes). Entries are
/// plain arrays or, from <see cref="RemoteBlobSource"/>, pooled units the cache holds a reference on until
/// they are evicted or replaced.
/// </summary>
public sealed class MemoryRangeCache : IRangeCache, IDisposable
{
    private static readonly PostEvictionDelegate ReleaseUnit = (_, value, _, _) => (value as FetchedUnit)?.Release();

    private readonly MemoryCache _cache;

    public MemoryRangeCache(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = capacityBytes, CompactionPercentage = 0.25 });
    }

    public bool TryRead(Digest blob, long offset, Span<byte> destination)
    {
        if (TryAcquireUnit(blob, offset, destination.Length) is not { } unit)
        {
            return false;
        }

        try
        {
            unit.Span.CopyTo(destination);
            return true;
        }
        finally
        {
            unit.Release();
        }
    }

    public bool Contains(Digest blob, long offset, int length) =>
        _cache.TryGetValue((blob, offset), out object? value) && LengthOf(value) == length;

    /// <summary>The cached array itself (no copy) when it is a plain array; a copy when it is a pooled unit.</summary>
    public byte[]? TryGet(Digest blob, long offset, int length)
    {
        _cache.TryGetValue((blob, offset), out object? value);
        if (value is byte[] data)
        {
            return data.Length == length ? data : null;
        }

        var buffer = new byte[length];
        return TryRead(blob, offset, buffer) ? buffer : null;
    }

    /// <summary>Keeps <paramref name="data"/> itself (no copy); the caller gives up the array.</summary>
    public void Store(Digest blob, long offset, byte[] data) =>
        _cache.Set((blob, offset), data, new MemoryCacheEntryOptions { Size = data.Length });

    public void Write(Digest blob, long offset, ReadOnlySpan<byte> data) =>
        _cache.Set((blob, offset), data.ToArray(), new MemoryCacheEntryOptions { Size = data.Length });

    /// <summary>Keeps a pooled unit with a reference of its own (the caller must hold one while calling), released on eviction.</summary>
    internal void Store(Digest blob, long offset, FetchedUnit unit)
    {
        if (!unit.TryAcquire())
        {
            throw new InvalidOperationException("storing a unit nobody holds");
        }

        var options = new MemoryCacheEntryOptions { Size = unit.Length };
        options.RegisterPostEvictionCallback(ReleaseUnit);
        _cache.Set((blob, offset), unit, options);
    }

    /// <summary>The cached range with a reference the caller must release, or null (also when it was just evicted).</summary>
    internal FetchedUnit? TryAcquireUnit(Digest blob, long offset, int length) =>
        _cache.TryGetValue((blob, offset), out object? value) && LengthOf(value) == length
            ? value switch
            {
                FetchedUnit unit => unit.TryAcquire() ? unit : null,
                byte[] data => FetchedUnit.Wrap(data),
                _ => null,
            }
            : null;

    private static int LengthOf(object? value) => value switch
    {
        byte[] data => data.Length,
        FetchedUnit unit => unit.Length,
        _ => -1,
    };

    public void Dispose() => _cache.Dispose();
}

/// <summary>
/// Caches tried in order (memory, then disk): a hit in a lower one is copied into the ones above it;
/// writes go to all of them.
/// </summary>
public sealed class LayeredRangeCache(params IRangeCache[] layers) : IRangeCache
{
    public byte[]? TryGet(Digest blob, long offset, int length)
    {
        for (var i = 0; i < layers.Length; i++)
        {
            if (layers[i].TryGet(blob, offset, length) is { } data)
            {
                for (var j = 0; j < i; j++)
                {
                    layers[j].Write(blob, offset, data);
                }

                return data;
            }
        }

        return null;
    }

    public bool TryRead(Digest blob, long offset, Span<byte> destination)
    {
        for (var i = 0; i < layers.Length; i++)
        {
            if (layers[i].TryRead(blob, offset, destination))
            {
                for (var j = 0; j < i; j++)
                {
                    layers[j].Write(blob, offset, destination);
                }

                return true;
            }
        }

        return false;
    }

    public bool Contains(Digest blob, long offset, int length) => layers.Any(l => l.Contains(blob, offset, length));

    public void Write(Digest blob, long offset, ReadOnlySpan<byte> data)
    {
        foreach (var layer in layers)
        {
            layer.Write(blob, offset, data);
        }
    }
}
