using Microsoft.Win32.SafeHandles;
using TurboOci.Storage;

namespace TurboOci.Interop.Linux;

/// <summary>
/// A whole file mapped read-only, as an <see cref="IByteView"/>: threads that hash or analyse a blob (the indexer's
/// span digests) read its bytes in the page cache where they are, instead of from copies. Pages fault in as used and
/// leave the resident set again through <see cref="ReleaseBefore"/>.
/// </summary>
public sealed unsafe class MappedFileView : IByteView, IDisposable
{
    private readonly MemoryMapping? _mapping;
    private long _released;

    private MappedFileView(MemoryMapping? mapping, long length)
    {
        _mapping = mapping;
        Length = length;
    }

    public long Length { get; }

    /// <summary>Maps the file open in <paramref name="file"/> at its current length (an empty file maps nothing).</summary>
    public static MappedFileView Open(SafeFileHandle file)
    {
        var length = RandomAccess.GetLength(file);
        return new MappedFileView(length == 0 ? null : MemoryMapping.Map(file, (nuint)length, 0, writable: false, populate: false), length);
    }

    public ReadOnlySpan<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, +{length}) lies outside the {Length}-byte mapping");
        }

        return length == 0 ? [] : new ReadOnlySpan<byte>((byte*)_mapping!.Address + offset, length);
    }

    /// <summary>
    /// Drops this process's mapping of the whole pages before <paramref name="offset"/> (MADV_DONTNEED): they leave its
    /// resident set, stay in the page cache, and would fault in again if read.
    /// </summary>
    public void ReleaseBefore(long offset)
    {
        var end = Math.Min(offset, Length) & ~(long)(Environment.SystemPageSize - 1);
        var start = Interlocked.Read(ref _released);
        if (_mapping is null || end <= start || Interlocked.CompareExchange(ref _released, end, start) != start)
        {
            return;
        }

        // Advice only: a failure leaves the pages mapped, which costs memory, never correctness.
        _ = Libc.Madvise(_mapping.Address + (nint)start, (nuint)(end - start), Libc.MadvDontNeed);
    }

    /// <summary>Unmaps; spans handed out before must no longer be used.</summary>
    public void Dispose() => _mapping?.Dispose();
}
