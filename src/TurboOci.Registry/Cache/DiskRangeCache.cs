using System.Buffers;
using System.Globalization;

namespace TurboOci.Registry.Cache;

/// <summary>What a disk cache holds and what happened to it.</summary>
public sealed record RangeCacheStats(long Entries, long Bytes, int Blobs, long CapacityBytes, long Hits, long Misses, long CorruptEntries, long Evictions);

/// <summary>
/// A node-wide disk cache of fetched blob ranges, shared by every device and process on the node.
/// </summary>
/// <remarks>
/// <para>One file per range, <c>ranges/&lt;alg&gt;/&lt;hex&gt;/&lt;offset&gt;-&lt;length&gt;</c>, holding a
/// <see cref="RangeCacheEntryHeader"/> and the bytes. A range is written to a temp file, made durable with
/// fsync, and only then renamed into place: the rename is the "present" mark, so a crash leaves either no
/// entry or a complete one. Every read checks the header and the data CRC-32C; a torn or corrupted entry is
/// deleted and reported as a miss, so the caller refetches it and never serves it.</para>
/// <para>Recency is the file's mtime, touched on every hit, so LRU order is shared between processes.
/// Eviction runs under an exclusive lock on <c>lock</c> (flock), rescans the folder and deletes the least
/// recently used entries down to 90% of the capacity. Renames are atomic, so readers in other processes
/// never see a half-written entry, and a file deleted under a reader stays readable through its handle.</para>
/// </remarks>
public sealed class DiskRangeCache : IRangeCache
{
    private const double LowWatermark = 0.9;
    private const string RangesFolder = "ranges";
    private const string TempFolder = "tmp";

    private readonly string _root;
    private readonly Action<string>? _log;
    private long _approximateBytes;
    private long _hits;
    private long _misses;
    private long _corrupt;
    private long _evictions;
    private readonly Lock _gate = new();

    public DiskRangeCache(string directory, long capacityBytes, Action<string>? log = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        _root = Path.GetFullPath(directory);
        CapacityBytes = capacityBytes;
        _log = log;
        Directory.CreateDirectory(Path.Combine(_root, RangesFolder));
        Directory.CreateDirectory(Path.Combine(_root, TempFolder));
        RemoveAbandonedTempFiles();
        _approximateBytes = Scan().Sum(e => e.Bytes);
    }

    public string Root => _root;

    public long CapacityBytes { get; }

    public bool TryRead(Digest blob, long offset, Span<byte> destination)
    {
        var path = EntryPath(blob, offset, destination.Length);
        byte[]? rented = null;
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var total = RangeCacheEntryHeader.Size + destination.Length;
            rented = ArrayPool<byte>.Shared.Rent(total);
            var buffer = rented.AsSpan(0, total);
            var read = ReadFully(handle, buffer);
            if (!Validate(buffer[..read], offset, destination.Length, out var problem))
            {
                Discard(path, problem);
                Interlocked.Increment(ref _misses);
                return false;
            }

            buffer.Slice(RangeCacheEntryHeader.Size, destination.Length).CopyTo(destination);
            Touch(path);
            Interlocked.Increment(ref _hits);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public bool Contains(Digest blob, long offset, int length) => File.Exists(EntryPath(blob, offset, length));

    public void Write(Digest blob, long offset, ReadOnlySpan<byte> data)
    {
        var entryBytes = data.Length + RangeCacheEntryHeader.Size;
        if (data.IsEmpty || entryBytes > CapacityBytes)
        {
            return;
        }

        var path = EntryPath(blob, offset, data.Length);
        var temp = Path.Combine(_root, TempFolder, $"{Guid.NewGuid():N}.{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                Span<byte> header = stackalloc byte[RangeCacheEntryHeader.Size];
                RangeCacheEntryHeader.For(offset, data).Write(header);
                RandomAccess.Write(handle, header, 0);
                RandomAccess.Write(handle, data, RangeCacheEntryHeader.Size);
                // Durable before visible: the rename below is what marks the range present.
                RandomAccess.FlushToDisk(handle);
            }

            lock (_gate)
            {
                // Make room before the entry appears, so the cache never holds more than its capacity.
                if (Interlocked.Read(ref _approximateBytes) + entryBytes > CapacityBytes)
                {
                    EvictTo(Math.Min((long)(CapacityBytes * LowWatermark), CapacityBytes - entryBytes));
                }

                var existed = File.Exists(path);
                File.Move(temp, path, overwrite: true);
                if (!existed)
                {
                    Interlocked.Add(ref _approximateBytes, entryBytes);
                }
            }
        }
        catch (IOException e)
        {
            // A full or failing disk must not fail the read that fetched the range; it only is not cached.
            _log?.Invoke($"cache: could not store a range of {blob}: {e.Message}");
            TryDelete(temp);
        }
    }

    /// <summary>Deletes least recently used entries until the cache holds at most <paramref name="targetBytes"/>.</summary>
    /// <returns>Bytes freed, or 0 when another process is evicting right now.</returns>
    public long EvictTo(long targetBytes)
    {
        lock (_gate)
        {
            using var gate = TryLock();
            if (gate is null)
            {
                return 0;
            }

            var entries = Scan().OrderBy(e => e.LastUsed).ToList();
            var total = entries.Sum(e => e.Bytes);
            long freed = 0;
            foreach (var entry in entries)
            {
                if (total - freed <= targetBytes)
                {
                    break;
                }

                if (TryDelete(entry.Path))
                {
                    freed += entry.Bytes;
                    Interlocked.Increment(ref _evictions);
                }
            }

            Interlocked.Exchange(ref _approximateBytes, total - freed);
            return freed;
        }
    }

    /// <summary>Removes every cached range of one blob.</summary>
    public void RemoveBlob(Digest blob)
    {
        var folder = BlobFolder(blob);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        Interlocked.Exchange(ref _approximateBytes, Scan().Sum(e => e.Bytes));
    }

    public RangeCacheStats GetStats()
    {
        var entries = Scan().ToList();
        return new RangeCacheStats(entries.Count, entries.Sum(e => e.Bytes), entries.Select(e => e.Blob).Distinct().Count(), CapacityBytes,
            Interlocked.Read(ref _hits), Interlocked.Read(ref _misses), Interlocked.Read(ref _corrupt), Interlocked.Read(ref _evictions));
    }

    /// <summary>Checks every entry's header and CRC; deletes the bad ones. Returns (good, removed).</summary>
    public (int Good, int Removed) Verify()
    {
        int good = 0, removed = 0;
        foreach (var entry in Scan())
        {
            var bytes = File.ReadAllBytes(entry.Path);
            if (Validate(bytes, entry.Offset, entry.Length, out var problem))
            {
                good++;
            }
            else
            {
                Discard(entry.Path, problem);
                removed++;
            }
        }

        return (good, removed);
    }

    /// <summary>Every entry on disk, with what its name says it holds.</summary>
    public IEnumerable<CachedRange> Scan()
    {
        var ranges = Path.Combine(_root, RangesFolder);
        if (!Directory.Exists(ranges))
        {
            yield break;
        }

        foreach (var algorithmFolder in Directory.EnumerateDirectories(ranges))
        {
            foreach (var blobFolder in Directory.EnumerateDirectories(algorithmFolder))
            {
                if (!Digest.TryParse($"{Path.GetFileName(algorithmFolder)}:{Path.GetFileName(blobFolder)}", out var blob))
                {
                    continue;
                }

                foreach (var file in new DirectoryInfo(blobFolder).EnumerateFiles())
                {
                    var parts = file.Name.Split('-');
                    if (parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var offset) &&
                        int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var length))
                    {
                        long bytes;
                        try
                        {
                            bytes = file.Length;
                        }
                        catch (FileNotFoundException)
                        {
                            continue; // evicted (perhaps by another process) between listing and stat
                        }

                        yield return new CachedRange(blob, offset, length, file.FullName, bytes, file.LastWriteTimeUtc);
                    }
                }
            }
        }
    }

    /// <summary>Checks one entry file's bytes: header, the range its name promises, length and data CRC.</summary>
    public static bool Validate(ReadOnlySpan<byte> entry, long offset, int length, out string problem)
    {
        if (!RangeCacheEntryHeader.TryRead(entry, out var header, out problem))
        {
            return false;
        }

        if (header.Offset != offset || header.Length != length)
        {
            problem = $"header names [{header.Offset}, +{header.Length}), file name [{offset}, +{length})";
            return false;
        }

        if (entry.Length != RangeCacheEntryHeader.Size + length)
        {
            problem = $"holds {entry.Length - RangeCacheEntryHeader.Size} data bytes, header says {length}";
            return false;
        }

        if (Storage.Crc32C.Compute(0, entry[RangeCacheEntryHeader.Size..]) != header.DataCrc)
        {
            problem = "data checksum mismatch";
            return false;
        }

        return true;
    }

    private void Discard(string path, string problem)
    {
        Interlocked.Increment(ref _corrupt);
        _log?.Invoke($"cache: discarding {Path.GetRelativePath(_root, path)}: {problem}");
        TryDelete(path);
    }

    private static int ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = RandomAccess.Read(handle, buffer[total..], total);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    private static void Touch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // evicted meanwhile: recency no longer matters
        }
    }

    private FileStream? TryLock()
    {
        try
        {
            // .NET takes an exclusive flock for FileShare.None on Unix: one evictor per node at a time.
            return new FileStream(Path.Combine(_root, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Temp files of processes that died mid-write are garbage: the range was never marked present.</summary>
    private void RemoveAbandonedTempFiles()
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_root, TempFolder)))
        {
            var pidText = Path.GetExtension(file).TrimStart('.');
            if (int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                TryDelete(file);
            }
        }
    }

    private string BlobFolder(Digest blob) => Path.Combine(_root, RangesFolder, blob.Algorithm, blob.Hex);

    private string EntryPath(Digest blob, long offset, int length) =>
        Path.Combine(BlobFolder(blob), string.Create(CultureInfo.InvariantCulture, $"{offset}-{length}"));

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}

/// <summary>One range file of the disk cache.</summary>
public sealed record CachedRange(Digest Blob, long Offset, int Length, string Path, long Bytes, DateTime LastUsed);
