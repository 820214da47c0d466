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
    public int MaxReadAheadUnits { get; init; } = 64;

    /// <summary>
    /// Adjacent missing units merged into one request, at most this many. Registries spend milliseconds of CPU on
    /// every request (docker-registry: about 5 ms), so a long sequential read is fetched in few, large requests.
    /// </summary>
    public int MaxUnitsPerRequest { get; init; } = 32;

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
    private readonly ConcurrentDictionary<long, FetchedUnit> _inflight = new();

    // Read-ahead units that arrived and were not read yet. They are held here, not only in the cache, so a
    // sequential reader never finds its next unit evicted (or, without a cache, dropped) and fetches it twice.
    // The table holds a reference on each unit (see FetchedUnit): its pooled array is not reused while listed.
    private readonly ConcurrentDictionary<long, FetchedUnit> _readAhead = new();
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
        var count = checked((int)(last - first + 1));
        // Every unit of this read, each with a reference this reader holds until it copied out of it.
        var units = ArrayPool<FetchedUnit?>.Shared.Rent(count);
        try
        {
            AcquireUnits(first, units.AsSpan(0, count));
            MaybeReadAhead(offset, length, first, last);
            for (var index = first; index <= last; index++)
            {
                var fetched = units[index - first]!;
                var ready = fetched.Ready;
                if (!ready.IsCompletedSuccessfully)
                {
                    await ready.WaitAsync(cancellationToken).ConfigureAwait(false);
                }

                var unitStart = index * unit;
                var from = Math.Max(offset, unitStart);
                var to = Math.Min(offset + length, unitStart + fetched.Length);
                fetched.Span.Slice((int)(from - unitStart), (int)(to - from)).CopyTo(destination.Span[(int)(from - offset)..]);
                if (to == unitStart + fetched.Length && _readAhead.TryRemove(new KeyValuePair<long, FetchedUnit>(index, fetched)))
                {
                    fetched.Release(); // read to its end: a sequential reader is done with it
                }
            }

            return length;
        }
        finally
        {
            foreach (var held in units.AsSpan(0, count))
            {
                held?.Release();
            }

            ArrayPool<FetchedUnit?>.Shared.Return(units, clearArray: true);
        }
    }

    /// <summary>Waits until every fetch started so far, read-ahead included, has finished and been cached.</summary>
    public Task DrainAsync() => Task.WhenAll(_background.Keys).ContinueWith(_ => { }, TaskScheduler.Default);

    /// <summary>
    /// Takes a reference on each unit from <paramref name="first"/> on: one being fetched, a read-ahead one,
    /// a cached one, or else a new fetch (adjacent missing units in one request). A unit whose last reference
    /// went just as we looked (its array back in the pool) is looked up again, never used.
    /// </summary>
    private void AcquireUnits(long first, Span<FetchedUnit?> units)
    {
        List<(long Index, FetchedUnit Unit)>? run = null;
        for (var i = 0; i < units.Length; i++)
        {
            var index = first + i;
            while (units[i] is null)
            {
                if (_inflight.TryGetValue(index, out var pending))
                {
                    if (pending.TryAcquire())
                    {
                        units[i] = pending;
                        continue;
                    }

                    _inflight.TryRemove(new KeyValuePair<long, FetchedUnit>(index, pending)); // finished and let go
                }

                if ((_readAhead.TryGetValue(index, out var ready) && ready.TryAcquire() ? ready : TryAcquireCached(index)) is { } found)
                {
                    units[i] = found;
                    continue;
                }

                // Two references: the fetch's and this reader's.
                var claimed = FetchedUnit.Rent(UnitLength(index), references: 2);
                if (!_inflight.TryAdd(index, claimed))
                {
                    claimed.Release();
                    claimed.Release();
                    continue; // another reader claimed it first: share theirs
                }

                units[i] = claimed;
                run = AddToRun(run, index, claimed, readAhead: false);
            }
        }

        if (run is not null)
        {
            StartRun(run, readAhead: false);
        }
    }

    /// <summary>Appends a claimed unit to the current run of adjacent units, starting the run first when it cannot grow.</summary>
    private List<(long Index, FetchedUnit Unit)> AddToRun(List<(long Index, FetchedUnit Unit)>? run, long index, FetchedUnit unit, bool readAhead)
    {
        if (run is not null && (run[^1].Index + 1 != index || run.Count == _options.MaxUnitsPerRequest))
        {
            StartRun(run, readAhead);
            run = null;
        }

        run ??= [];
        run.Add((index, unit));
        return run;
    }

    private FetchedUnit? TryAcquireCached(long index)
    {
        var offset = index * _options.FetchUnit;
        if (_options.Cache is MemoryRangeCache memory)
        {
            return memory.TryAcquireUnit(Digest, offset, UnitLength(index));
        }

        return _options.Cache?.TryGet(Digest, offset, UnitLength(index)) is { } data ? FetchedUnit.Wrap(data) : null;
    }

    private int UnitLength(long index) => (int)Math.Min(_options.FetchUnit, Size - index * _options.FetchUnit);

    private void StartRun(List<(long Index, FetchedUnit Unit)> run, bool readAhead)
    {
        // Started inline: the request is sent and its body read on I/O completions, so no thread-pool hop is
        // needed to get it going; the first await returns control to the reader.
        var task = FetchRunAsync(run, readAhead);
        _background[task] = true;
        _ = task.ContinueWith(t => _background.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task FetchRunAsync(List<(long Index, FetchedUnit Unit)> run, bool readAhead)
    {
        var unit = _options.FetchUnit;
        var start = run[0].Index * unit;

        // Each unit has its own pooled array and the body is read straight into them: no copy between request and readers.
        var buffers = new Memory<byte>[run.Count];
        var length = 0L;
        for (var i = 0; i < run.Count; i++)
        {
            buffers[i] = run[i].Unit.Memory;
            length += buffers[i].Length;
        }

        var released = 0;
        var releasedEnd = 0L;

        // Units are handed to readers as soon as their bytes arrived and verified, not when the whole run is in.
        void ReleaseUpTo(int filled)
        {
            while (released < run.Count)
            {
                var (index, fetched) = run[released];
                if (releasedEnd + fetched.Length > filled || (_options.Verifier is { } verifier && !verifier.Verify(index * unit, fetched.Span)))
                {
                    return;
                }

                if (readAhead)
                {
                    // Listed before readers can have it: one that reads it to its end takes it out of the table again.
                    KeepReadAhead(index, fetched);
                }

                fetched.SetReady();
                releasedEnd += fetched.Length;
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

            // Cache after the readers were released, but keep the in-flight entries until the cache holds the
            // units, so nobody refetches them in between.
            foreach (var (index, fetched) in run)
            {
                var offset = index * unit;
                if (_options.Cache is MemoryRangeCache memory)
                {
                    memory.Store(Digest, offset, fetched); // the cache takes its own reference
                }
                else
                {
                    _options.Cache?.Write(Digest, offset, fetched.Span);
                }
            }
        }
        catch (Exception e)
        {
            foreach (var (_, fetched) in run)
            {
                fetched.SetFailed(e);
            }
        }
        finally
        {
            foreach (var (index, fetched) in run)
            {
                _inflight.TryRemove(new KeyValuePair<long, FetchedUnit>(index, fetched));
                fetched.Release(); // the fetch's reference
            }
        }
    }

    /// <summary>Lists a fetched read-ahead unit (with a reference of the table's own) until it is read or dropped.</summary>
    private void KeepReadAhead(long index, FetchedUnit fetched)
    {
        if (!fetched.TryAcquire())
        {
            return;
        }

        while (!_readAhead.TryAdd(index, fetched))
        {
            if (_readAhead.TryRemove(index, out var replaced))
            {
                replaced.Release();
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

        List<long>? ahead = null;
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
                    (ahead ??= []).Add(index);
                }
            }

            // Whole requests only: the units past the last full request wait for the next refill (unless the blob
            // ends there), instead of going out as a small request of their own that costs the registry as much.
            var batch = Math.Min(_options.MaxUnitsPerRequest, window);
            if (ahead is { Count: > 0 } && ahead.Count > batch && ahead[^1] != unitCount - 1)
            {
                ahead.RemoveRange(ahead.Count - ahead.Count % batch, ahead.Count % batch);
            }

            _window = Math.Min(window * 2, Math.Max(_options.ReadAheadUnits, _options.MaxReadAheadUnits));
            DropReadAheadOutside(firstUnit, lastUnit + _window);
        }

        List<(long Index, FetchedUnit Unit)>? run = null;
        foreach (var index in ahead ?? [])
        {
            // One reference, the fetch's: nobody waits for it yet. Failures surface when (and if) the unit is read.
            var claimed = FetchedUnit.Rent(UnitLength(index), references: 1);
            if (_inflight.TryAdd(index, claimed))
            {
                run = AddToRun(run, index, claimed, readAhead: true);
            }
            else
            {
                claimed.Release();
            }
        }

        if (run is not null)
        {
            StartRun(run, readAhead: true);
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
                if (_readAhead.TryRemove(index, out var dropped))
                {
                    dropped.Release();
                }
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

            foreach (var index in _readAhead.Keys)
            {
                if (_readAhead.TryRemove(index, out var held))
                {
                    held.Release();
                }
            }
        }
    }
}
