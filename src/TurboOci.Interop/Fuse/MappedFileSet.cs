using System.Collections.Concurrent;
using System.Numerics;
using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;

namespace TurboOci.Interop.Fuse;

/// <summary>
/// Read-only mappings of the local files a FUSE source's bytes live in (the layer files of a stack), each file
/// mapped once, on first use, by any number of serving threads. A file that grows past its mapping (the data
/// file of a writable layer) is mapped again, to the next power of two, so growth costs few mappings; replaced
/// mappings stay valid until <see cref="Dispose"/>, since another thread may still be sending from one.
/// </summary>
public sealed class MappedFileSet : IDisposable
{
    /// <summary>How many times one file may be mapped again as it grows before its replies go through a buffer.</summary>
    private const int MaxRemapsPerFile = 48;

    private readonly ConcurrentDictionary<SafeFileHandle, Entry> _current = new(ReferenceEqualityComparer.Instance);
    private readonly List<MappedFile> _all = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>How many distinct files have been mapped.</summary>
    public int FileCount => _current.Count;

    /// <summary>
    /// A mapping of <paramref name="file"/> that covers its first <paramref name="end"/> bytes, or null when the
    /// file cannot be mapped (a file system without mmap) or has been remapped too often.
    /// </summary>
    public MappedFile? Get(SafeFileHandle file, long end)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (_current.TryGetValue(file, out var entry) && (entry.Mapping is null || entry.Mapping.Length >= end))
        {
            return entry.Mapping;
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_current.TryGetValue(file, out entry) && (entry.Mapping is null || entry.Mapping.Length >= end))
            {
                return entry.Mapping;
            }

            var remaps = entry?.Remaps + 1 ?? 0;
            var mapping = remaps > MaxRemapsPerFile ? null : TryMap(file, Math.Max(end, RandomAccess.GetLength(file)));
            if (mapping is not null)
            {
                _all.Add(mapping);
            }

            _current[file] = new Entry(mapping, remaps);
            return mapping;
        }
    }

    /// <summary>Maps <paramref name="length"/> rounded up to a power of two (past the end of the file is allowed; those pages fill in as it grows).</summary>
    private static MappedFile? TryMap(SafeFileHandle file, long length)
    {
        var rounded = length <= 1L << 62 ? (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(length, 4096)) : length;
        try
        {
            return MappedFile.Map(file, rounded);
        }
        catch (ErrnoException e) when (e.Errno is Errno.ENODEV or Errno.EACCES or Errno.ENOMEM)
        {
            return null;
        }
    }

    /// <summary>Unmaps everything; only once no thread sends from these mappings any more.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _all.ForEach(m => m.Dispose());
            _all.Clear();
            _current.Clear();
        }
    }

    private sealed record Entry(MappedFile? Mapping, int Remaps);
}
