using System.Buffers;
using System.Collections.Concurrent;
using System.Numerics;
using TurboOci.Registry.Cache;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>How a remote blob is fetched and cached.</summary>
public sealed record RemoteBlobOptions
{
    public const int DefaultFetchUnit = 1024 * 1024;

    /// <summary>Reads become Range GETs of whole units of this size (a power of two, at least 4 KiB).</summary>
    public int FetchUnit { get; init; } = DefaultFetchUnit;

    /// <summary>Units fetched ahead once reads look sequential (the first window; it grows while reading stays sequential).</summary>
    public int ReadAheadUnits { get; init; } = 8;

    /// <summary>The largest read-ahead window, in units, a long sequential read grows to (bounds the memory one reader pins).</summary>
    public int MaxReadAheadUnits { get; init; } = 32;

    /// <summary>Adjacent missing units merged into one request, at most this many.</summary>
    public int MaxUnitsPerRequest { get; init; } = 16;

    /// <summary>Where fetched units are kept (memory and/or disk); null fetches every read.</summary>
    public IRangeCache? Cache { get; init; }

    /// <summary>Checks each fetched unit before use (span digests).</summary>
    public IRangeVerifier? Verifier { get; init; }

    /// <summary>Fetches of a unit that fails verification before the read fails.</summary>
    public int VerifyAttempts { get; init; } = 3;

    internal void Validate()
    {
        if (FetchUnit < 4096 || !BitOperations.IsPow2(FetchUnit))
        {
            throw new ArgumentOutOfRangeException(nameof(FetchUnit), "fetch unit must be a power of two of at least 4096 bytes");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(ReadAheadUnits);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxReadAheadUnits);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxUnitsPerRequest);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(VerifyAttempts);
    }
}

/// <summary>
/// A blob in a registry as a read-only block source. Reads are served from the cache or turned into Range
/// GETs of whole fetch units: adjacent missing units of one read go in one request, concurrent readers of
/// the same unit share one request, and sequential reading triggers read-ahead. In the steady state every
/// miss costs exactly one HTTP request (no HEAD, no token round trip). Fetched units are verified (when a
/// verifier is set) before they are used or cached.
/// </summary>
public sealed class RemoteBlobSource : BlockSource
{
    private readonly RegistryClient _client;
    private readonly RemoteBlobOptions _options;
    private readonly ConcurrentDictionary<long, Task<byte[]>> _inflight = new();

    // Read-ahead units that arrived and were not read yet. They are held here, not only in the cache, so a
    // sequential reader never finds its next unit evicted (or, without a cache, dropped) and fetches it twice.
    private readonly ConcurrentDictionary<long, byte[]> _readAhead = new();
    private readonly ConcurrentDictionary<Task, bool> _background = new();
    private readonly Lock _readAheadLock = new();
    private long _sequentialEnd = -1;
    private int _window;
    private long _fetchRequests;
    private long _fetchedBytes;

    private RemoteBlobSource(RegistryClient client, ImageReference image, Digest digest, long size, RemoteBlobOptions options)
    {
        _client = client;
        Image = image;
        Digest = digest;
        Size = size;
        _options = options;
        _window = options.ReadAheadUnits;
    }

    public ImageReference Image { get; }

    public Digest Digest { get; }

    public override long Size { get; }

    /// <summary>Range GETs issued for misses and read-ahead (not counting retries).</summary>
    public long FetchRequests => Interlocked.Read(ref _fetchRequests);

    public long FetchedBytes => Interlocked.Read(ref _fetchedBytes);

    /// <summary>Opens a blob; with <paramref name="size"/> known (from a manifest) no request is made.</summary>
    public static async Task<RemoteBlobSource> OpenAsync(RegistryClient client, ImageReference image, Digest digest, long? size = null,
        RemoteBlobOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RemoteBlobOptions();
        options.Validate();
        var actual = size ?? await client.HeadBlobAsync(image, digest, cancellationToken).ConfigureAwait(false)
            ?? throw new RegistryException($"blob {digest} not found in {image.Registry}/{image.Repository}", System.Net.HttpStatusCode.NotFound);
        ArgumentOutOfRangeException.ThrowIfNegative(actual);
        return new RemoteBlobSource(client, image, digest, actual, options);
    }

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        if (length == 0)
        {
            return 0;
        }

        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var read = ReadAtAsync(offset, rented.AsMemory(0, length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, read).CopyTo(destination);
            return read;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override async ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var length = ClampLength(offset, destination.Length);
        if (length == 0)
        {
            return 0;
        }

        var unit = _options.FetchUnit;
        var first = offset / unit;
        var last = (offset + length - 1) / unit;
        var units = new Task<byte[]>[last - first + 1];
        var missing = new List<long>();
        for (var index = first; index <= last; index++)
        {
            if (_inflight.TryGetValue(index, out var pending))
            {
                units[index - first] = pending;
            }
            else if (_readAhead.TryGetValue(index, out var ready) || (ready = TryReadCached(index)) is not null)
            {
                units[index - first] = Task.FromResult(ready);
            }
            else
            {
                missing.Add(index);
            }
        }

        foreach (var (index, task) in Fetch(missing, readAhead: false))
        {
            units[index - first] = task;
        }

        MaybeReadAhead(offset, length, first, last);
        for (var index = first; index <= last; index++)
        {
            var data = await units[index - first].WaitAsync(cancellationToken).ConfigureAwait(false);
            var unitStart = index * unit;
            var from = Math.Max(offset, unitStart);
            var to = Math.Min(offset + length, unitStart + data.Length);
            data.AsSpan((int)(from - unitStart), (int)(to - from)).CopyTo(destination.Span[(int)(from - offset)..]);
            if (to == unitStart + data.Length)
            {
                _readAhead.TryRemove(index, out _); // read to its end: a sequential reader is done with it
            }
        }

        return length;
    }

    /// <summary>Waits until every fetch started so far, read-ahead included, has finished and been cached.</summary>
    public Task DrainAsync() => Task.WhenAll(_background.Keys).ContinueWith(_ => { }, TaskScheduler.Default);

    private byte[]? TryReadCached(long index)
    {
        return _options.Cache?.TryGet(Digest, index * _options.FetchUnit, UnitLength(index));
    }

    private int UnitLength(long index) => (int)Math.Min(_options.FetchUnit, Size - index * _options.FetchUnit);

    /// <summary>
    /// Claims the missing units no other reader is fetching, groups the claimed ones into runs of adjacent
    /// units, and starts one request per run. Returns a task per unit asked for (claimed or shared).
    /// </summary>
    private List<(long Index, Task<byte[]> Task)> Fetch(IReadOnlyList<long> indexes, bool readAhead)
    {
        var result = new List<(long, Task<byte[]>)>();
        var run = new List<(long Index, TaskCompletionSource<byte[]> Source)>();
        foreach (var index in indexes)
        {
            var source = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            var task = _inflight.GetOrAdd(index, source.Task);
            result.Add((index, task));
            if (task != source.Task)
            {
                continue; // someone else is fetching it
            }

            if (run.Count > 0 && (run[^1].Index + 1 != index || run.Count == _options.MaxUnitsPerRequest))
            {
                StartRun(run, readAhead);
                run = [];
            }

            run.Add((index, source));
        }

        if (run.Count > 0)
        {
            StartRun(run, readAhead);
        }

        return result;
    }

    private void StartRun(List<(long Index, TaskCompletionSource<byte[]> Source)> run, bool readAhead)
    {
        var task = Task.Run(() => FetchRunAsync(run, readAhead));
        _background[task] = true;
        _ = task.ContinueWith(t => _background.TryRemove(t, out _), TaskScheduler.Default);
    }

    private async Task FetchRunAsync(List<(long Index, TaskCompletionSource<byte[]> Source)> run, bool readAhead)
    {
        var unit = _options.FetchUnit;
        var start = run[0].Index * unit;

        // Each unit gets its own array and the body is read straight into them: no copy between request and cache.
        var units = run.Select(r => GC.AllocateUninitializedArray<byte>(UnitLength(r.Index))).ToArray();
        var buffers = units.Select(u => (Memory<byte>)u).ToArray();
        var length = units.Sum(u => (long)u.Length);
        var released = 0;
        var releasedEnd = 0L;

        // Units are handed to readers as soon as their bytes arrived and verified, not when the whole run is in.
        void ReleaseUpTo(int filled)
        {
            while (released < run.Count)
            {
                var data = units[released];
                if (releasedEnd + data.Length > filled || (_options.Verifier is { } verifier && !verifier.Verify(run[released].Index * unit, data)))
                {
                    return;
                }

                run[released].Source.SetResult(data);
                releasedEnd += data.Length;
                released++;
            }
        }

        try
        {
            for (var attempt = 1; ; attempt++)
            {
                Interlocked.Increment(ref _fetchRequests);
                var from = releasedEnd;
                var first = released;
                // A retry after a failed verification asks only for the units not released yet, and so does the
                // client's own retry after a broken connection: released units are in readers' hands, never rewritten.
                await _client.ReadBlobRangeAsync(Image, Digest, start + from, buffers[first..], CancellationToken.None,
                    filled => ReleaseUpTo(checked((int)(from + filled))), kept: () => checked((int)(releasedEnd - from))).ConfigureAwait(false);
                Interlocked.Add(ref _fetchedBytes, length - from);
                ReleaseUpTo(checked((int)length));
                if (released == run.Count)
                {
                    break;
                }

                var bad = run[released].Index * unit;
                _client.Options.Log?.Invoke($"blob {Digest}: bytes at {bad} failed verification (attempt {attempt}/{_options.VerifyAttempts})");
                if (attempt >= _options.VerifyAttempts)
                {
                    throw new RangeVerificationException(
                        $"blob {Digest}: bytes at offset {bad} did not match their span digest after {attempt} fetches; refusing to use them");
                }
            }

            // Cache after the readers were released, but keep the in-flight entries until the cache (and, for
            // read-ahead, the read-ahead table) holds the units, so nobody refetches them in between.
            for (var i = 0; i < run.Count; i++)
            {
                var offset = run[i].Index * unit;
                if (readAhead)
                {
                    _readAhead[run[i].Index] = units[i];
                }

                if (_options.Cache is MemoryRangeCache memory)
                {
                    memory.Store(Digest, offset, units[i]); // unit arrays are never written again
                }
                else
                {
                    _options.Cache?.Write(Digest, offset, units[i]);
                }
            }
        }
        catch (Exception e)
        {
            foreach (var (_, source) in run)
            {
                source.TrySetException(e);
            }
        }
        finally
        {
            foreach (var (index, source) in run)
            {
                _inflight.TryRemove(new KeyValuePair<long, Task<byte[]>>(index, source.Task));
            }
        }
    }

    /// <summary>
    /// When a read starts where the previous one ended, keep a window of units ahead of the reader: once
    /// fewer than half of them are fetched or in flight, the rest of the window goes out in requests of up to
    /// <see cref="RemoteBlobOptions.MaxUnitsPerRequest"/> units each, all in flight at once. The window
    /// doubles each time it is refilled, up to <see cref="RemoteBlobOptions.MaxReadAheadUnits"/>, so a long
    /// sequential read costs few, large requests; a jump elsewhere shrinks it back.
    /// </summary>
    private void MaybeReadAhead(long offset, int length, long firstUnit, long lastUnit)
    {
        var previousEnd = Interlocked.Exchange(ref _sequentialEnd, offset + length);
        if (_options.ReadAheadUnits == 0)
        {
            return;
        }

        var ahead = new List<long>();
        lock (_readAheadLock)
        {
            if (previousEnd != offset)
            {
                _window = _options.ReadAheadUnits;
                DropReadAheadOutside(firstUnit, lastUnit);
                return;
            }

            var window = _window;
            var unitCount = (Size + _options.FetchUnit - 1) / _options.FetchUnit;
            var ready = 0;
            while (ready < window && lastUnit + 1 + ready < unitCount && IsFetchedOrFetching(lastUnit + 1 + ready))
            {
                ready++;
            }

            if (ready * 2 >= window)
            {
                return;
            }

            for (var index = lastUnit + 1 + ready; index <= lastUnit + window && index < unitCount; index++)
            {
                if (!IsFetchedOrFetching(index))
                {
                    ahead.Add(index);
                }
            }

            _window = Math.Min(window * 2, Math.Max(_options.ReadAheadUnits, _options.MaxReadAheadUnits));
            DropReadAheadOutside(firstUnit, lastUnit + _window);
        }

        foreach (var (_, task) in Fetch(ahead, readAhead: true))
        {
            // Read-ahead failures surface when (and if) the unit is read.
            _ = task.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    private bool IsFetchedOrFetching(long index) =>
        _inflight.ContainsKey(index) || _readAhead.ContainsKey(index) || _options.Cache?.Contains(Digest, index * _options.FetchUnit, UnitLength(index)) == true;

    /// <summary>Read-ahead units the reader skipped or jumped away from are not kept (bounds the table).</summary>
    private void DropReadAheadOutside(long first, long last)
    {
        foreach (var index in _readAhead.Keys)
        {
            if (index < first || index > last)
            {
                _readAhead.TryRemove(index, out _);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                Task.WaitAll([.. _background.Keys], TimeSpan.FromSeconds(30));
            }
            catch (AggregateException)
            {
                // failures were reported to the readers
            }

            _readAhead.Clear();
        }
    }
}
