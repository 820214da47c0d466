using System.Buffers;

namespace TurboOci.Registry;

/// <summary>
/// One fetch unit's bytes in a pooled array, with a reference count: the fetch, every reader copying out of
/// it, the read-ahead table and the memory cache each hold a reference, and the array goes back to the pool
/// only when the last one is released. A reference can be taken only while the count is above zero
/// (<see cref="TryAcquire"/>), so once the array was returned nobody can reach it through this unit again:
/// a recycled array is never read as if it still held this unit's bytes.
/// </summary>
internal sealed class FetchedUnit
{
    // A private pool sized for the read-ahead window of a few readers: ArrayPool.Shared keeps only a handful
    // of 1 MiB arrays per core, so a 32-unit window would mostly allocate (zeroed LOH pages, gen2 GCs).
    private static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 4 * 1024 * 1024, maxArraysPerBucket: 96);

    private readonly byte[] _array;
    private readonly bool _pooled;
    private readonly TaskCompletionSource? _ready;
    private int _references;

    private FetchedUnit(byte[] array, int length, bool pooled, int references, bool pending)
    {
        _array = array;
        Length = length;
        _pooled = pooled;
        _references = references;
        _ready = pending ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
    }

    /// <summary>
    /// Tests set this: returned arrays are overwritten at once, so a read from an array after its unit was
    /// released shows up as wrong bytes every time, not only when another fetch happens to reuse it first.
    /// </summary>
    internal static bool PoisonReturnedArrays { get; set; }

    public int Length { get; }

    /// <summary>Completes when the bytes arrived and were verified (or faults with why they did not).</summary>
    public Task Ready => _ready?.Task ?? Task.CompletedTask;

    /// <summary>The unit's bytes; only valid while the caller holds a reference.</summary>
    public Span<byte> Span => _array.AsSpan(0, Length);

    public Memory<byte> Memory => _array.AsMemory(0, Length);

    /// <summary>A unit about to be fetched into a pooled array, with <paramref name="references"/> holders already.</summary>
    public static FetchedUnit Rent(int length, int references) => new(Pool.Rent(length), length, pooled: true, references, pending: true);

    /// <summary>Bytes that are not pooled (a cache's own array): released to the garbage collector, never reused.</summary>
    public static FetchedUnit Wrap(byte[] data) => new(data, data.Length, pooled: false, references: 1, pending: false);

    public bool TryAcquire()
    {
        var current = Volatile.Read(ref _references);
        while (current > 0)
        {
            var seen = Interlocked.CompareExchange(ref _references, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    public void Release()
    {
        var left = Interlocked.Decrement(ref _references);
        if (left == 0 && _pooled)
        {
            if (PoisonReturnedArrays)
            {
                _array.AsSpan().Fill(0xDB);
            }

            Pool.Return(_array);
        }
        else if (left < 0)
        {
            throw new InvalidOperationException("fetched unit released more often than acquired");
        }
    }

    public void SetReady() => _ready?.TrySetResult();

    /// <summary>Fails the readers waiting; marked observed, as a read-ahead unit may never be read.</summary>
    public void SetFailed(Exception error)
    {
        if (_ready is not null && _ready.TrySetException(error))
        {
            _ = _ready.Task.Exception;
        }
    }
}
