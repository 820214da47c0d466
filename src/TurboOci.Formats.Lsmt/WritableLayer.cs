using Microsoft.Win32.SafeHandles;
using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// A writable LSMT layer as overlaybd keeps it (formats doc §1.5.1): a data file that only grows (header, then
/// every write appended) and an index file that logs one 16-byte entry per write or trim. Reopening replays
/// the log, last writer wins. Ranges this layer never wrote read from <see cref="Lower"/> (the read-only stack
/// below, or zeros). As a warp layer (§1.6.1) writes go to a headerless fs-meta file at their own offset (tag 0)
/// and <see cref="AddRemoteMapping"/> maps ranges to the target, the uncompressed tar (tag 1).
/// </summary>
/// <remarks>
/// Thread-safe: writes are serialised; reads take a shared lock on the index and may run concurrently.
/// Writes need not be 512-aligned: partial sectors are read, patched and rewritten.
/// </remarks>
public sealed class WritableLayer : MappedLayer
{
    private const string Format = LsmtConstants.FormatName;
    private const int IndexReadChunkEntries = 65536;

    private readonly SafeFileHandle _data;
    private readonly SafeFileHandle _indexFile;
    private readonly BlockSource? _lower;
    private readonly BlockSource? _target;
    private readonly bool _ownsLower;
    private readonly WritableIndex _index = new();
    private readonly ReaderWriterLockSlim _indexLock = new(LockRecursionPolicy.NoRecursion);
    private readonly Lock _writeLock = new();
    private LsmtHeader _header;
    private long _dataEnd;
    private long _indexEnd;

    /// <summary>A scratch layer's index entries not yet written to its index file (they start at <see cref="_indexEnd"/>).</summary>
    private byte[]? _logBatch;
    private int _logBatched;
    private const int LogBatchBytes = 4096 * SegmentMapping.Size;

    private WritableLayer(SafeFileHandle data, SafeFileHandle indexFile, LsmtHeader header, BlockSource? lower, BlockSource? target, bool isWarp, bool ownsLower)
    {
        _data = data;
        _indexFile = indexFile;
        _header = header;
        _lower = lower;
        _target = target;
        IsWarp = isWarp;
        _ownsLower = ownsLower;
        _dataEnd = AlignUp(RandomAccess.GetLength(data));
        _indexEnd = LsmtConstants.HeaderBlockSize;
    }

    /// <summary>Whether this is a warp layer (fs-meta + remote mappings) rather than an append-only data layer.</summary>
    public bool IsWarp { get; }

    /// <summary>What ranges this layer does not map read from; null reads zeros.</summary>
    public BlockSource? Lower => _lower;

    /// <summary>The index file's header (vsize and uuid come from it on reopen).</summary>
    public LsmtHeader Header => _header;

    public override long Size => (long)_header.VirtualSize;

    public override bool CanWrite => true;

    public override string Uuid => _header.Uuid;

    public override string ParentUuid => _header.ParentUuid;

    /// <summary>A snapshot of the live entries, sorted (tag 1 = remote in a warp layer).</summary>
    public SegmentMapping[] GetEntries()
    {
        _indexLock.EnterReadLock();
        try
        {
            return _index.ToArray();
        }
        finally
        {
            _indexLock.ExitReadLock();
        }
    }

    /// <summary>
    /// Creates an empty layer (overlaybd-create DATA INDEX VSIZE): both headers, a fresh random uuid. With a
    /// <paramref name="lower"/> and <paramref name="virtualSize"/> 0 the layer takes the lower's size.
    /// </summary>
    /// <param name="scratch">
    /// A workspace that is committed and then deleted, never reopened (the indexer's): index entries are logged in
    /// batches and <see cref="Flush"/> forces nothing to disk, so a crash loses the layer. Never for a layer that
    /// must survive one.
    /// </param>
    public static WritableLayer Create(string dataPath, string indexPath, long virtualSize, string? parentUuid = null,
        BlockSource? lower = null, bool ownsLower = false, bool scratch = false) =>
        CreateCore(dataPath, indexPath, virtualSize, parentUuid, lower, target: null, warp: false, ownsLower, scratch);

    /// <summary>
    /// Creates an empty warp layer (overlaybd-create --turboOCI): <paramref name="fsMetaPath"/> becomes a headerless
    /// sparse file of the virtual size, metadata written at its own offset; <paramref name="target"/> is the
    /// uncompressed tar that remote mappings point into.
    /// </summary>
    /// <param name="scratch">As for <see cref="Create"/>: a workspace that is committed and deleted, not crash-safe.</param>
    public static WritableLayer CreateWarp(string fsMetaPath, string indexPath, long virtualSize, BlockSource? target,
        string? parentUuid = null, BlockSource? lower = null, bool ownsLower = false, bool scratch = false) =>
        CreateCore(fsMetaPath, indexPath, virtualSize, parentUuid, lower, target, warp: true, ownsLower, scratch);

    /// <summary>Reopens a layer after a restart: replays the index log in file order.</summary>
    public static WritableLayer Open(string dataPath, string indexPath, BlockSource? lower = null, bool ownsLower = false) =>
        OpenCore(dataPath, indexPath, lower, target: null, warp: false, ownsLower);

    /// <summary>Reopens a warp layer: tags are normalised by subtracting the smallest tag in the log.</summary>
    public static WritableLayer OpenWarp(string fsMetaPath, string indexPath, BlockSource? target, BlockSource? lower = null, bool ownsLower = false) =>
        OpenCore(fsMetaPath, indexPath, lower, target, warp: true, ownsLower);

    private static WritableLayer CreateCore(string dataPath, string indexPath, long virtualSize, string? parentUuid,
        BlockSource? lower, BlockSource? target, bool warp, bool ownsLower, bool scratch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(virtualSize);
        if (virtualSize == 0 && lower is not null)
        {
            virtualSize = lower.Size;
        }

        var uuid = LsmtUuid.NewRandom();
        var parent = parentUuid is null ? LsmtUuid.Null : LsmtUuid.Normalize(parentUuid);
        var indexHeader = new LsmtHeader(LsmtFlags.Header, LsmtConstants.HeaderBlockSize, 0, (ulong)virtualSize, uuid, parent, []);
        var data = File.OpenHandle(dataPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        SafeFileHandle? index = null;
        try
        {
            index = File.OpenHandle(indexPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
            if (warp)
            {
                RandomAccess.SetLength(data, virtualSize); // the fs-meta file: identity layout, no header
            }
            else
            {
                var dataHeader = indexHeader with { Flags = LsmtFlags.Header | LsmtFlags.DataFile, IndexOffset = 0 };
                RandomAccess.Write(data, dataHeader.ToArray(), 0);
            }

            RandomAccess.Write(index, indexHeader.ToArray(), 0);
            return new WritableLayer(data, index, indexHeader, lower, target, warp, ownsLower) { _logBatch = scratch ? new byte[LogBatchBytes] : null };
        }
        catch
        {
            data.Dispose();
            index?.Dispose();
            throw;
        }
    }

    private static WritableLayer OpenCore(string dataPath, string indexPath, BlockSource? lower, BlockSource? target, bool warp, bool ownsLower)
    {
        var data = File.OpenHandle(dataPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        SafeFileHandle? index = null;
        try
        {
            index = File.OpenHandle(indexPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            var block = new byte[LsmtConstants.HeaderBlockSize];
            if (!warp)
            {
                ReadBlock(data, block, dataPath, "data.header");
                var dataHeader = LsmtHeader.Read(block, 0, "data.header");
                if (!dataHeader.IsHeader)
                {
                    TurboOciFormatException.Throw(Format, "data.header.flags", LsmtHeader.FlagsOffset, $"flags 0x{(uint)dataHeader.Flags:X} lack the header bit");
                }
            }

            ReadBlock(index, block, indexPath, "index.header");
            var header = LsmtHeader.Read(block, 0, "index.header");
            if (!header.IsHeader || header.IsDataFile || header.IsSealed)
            {
                TurboOciFormatException.Throw(Format, "index.header.flags", LsmtHeader.FlagsOffset,
                    $"flags 0x{(uint)header.Flags:X}: an RW index file has the header bit, and neither the data-file nor the sealed bit");
            }

            if (header.IndexOffset != LsmtConstants.HeaderBlockSize)
            {
                TurboOciFormatException.Throw(Format, "index.header.index_offset", LsmtHeader.IndexOffsetOffset,
                    $"{header.IndexOffset}; an RW index file logs its entries from offset 4096");
            }

            if (header.VirtualSize > long.MaxValue)
            {
                TurboOciFormatException.Throw(Format, "index.header.virtual_size", LsmtHeader.VirtualSizeOffset, $"virtual size {header.VirtualSize} is impossible");
            }

            var layer = new WritableLayer(data, index, header, lower, target, warp, ownsLower);
            layer.Replay();
            return layer;
        }
        catch
        {
            data.Dispose();
            index?.Dispose();
            throw;
        }
    }

    private static void ReadBlock(SafeFileHandle handle, Span<byte> block, string path, string field)
    {
        var read = RandomAccess.Read(handle, block, 0);
        if (read < block.Length)
        {
            TurboOciFormatException.Throw(Format, field, read, $"{path} is {read} bytes; an LSMT header block is {block.Length}");
        }
    }

    /// <summary>Replays the index log in file order (formats doc §1.5.1 reopen, steps 3–4).</summary>
    private void Replay()
    {
        var length = RandomAccess.GetLength(_indexFile);
        var count = (length - LsmtConstants.HeaderBlockSize) / SegmentMapping.Size;
        if (count > LsmtConstants.MaxIndexEntries)
        {
            TurboOciFormatException.Throw(Format, "index.entries", LsmtConstants.HeaderBlockSize,
                $"{count} entries is more than the {LsmtConstants.MaxIndexEntries} a writable index may hold");
        }

        var raw = new List<(SegmentMapping Entry, long At)>();
        var buffer = new byte[IndexReadChunkEntries * SegmentMapping.Size];
        for (long done = 0; done < count;)
        {
            var chunk = (int)Math.Min(IndexReadChunkEntries, count - done);
            var at = LsmtConstants.HeaderBlockSize + (done * SegmentMapping.Size);
            var bytes = buffer.AsSpan(0, chunk * SegmentMapping.Size);
            if (RandomAccess.Read(_indexFile, bytes, at) != bytes.Length)
            {
                throw new IOException("the index file shrank while it was being read");
            }

            var entries = SegmentMapping.ReadAll(bytes);
            for (var i = 0; i < entries.Length; i++)
            {
                if (!entries[i].IsPadding && entries[i].Length > 0)
                {
                    raw.Add((entries[i], at + (i * SegmentMapping.Size)));
                }
            }

            done += chunk;
        }

        // A torn last entry (a crash mid-append) is not part of the log; the next append overwrites it.
        _indexEnd = LsmtConstants.HeaderBlockSize + (count * SegmentMapping.Size);
        var minimumTag = IsWarp && raw.Count > 0 ? raw.Min(r => r.Entry.Tag) : 0;
        var dataEndSector = (ulong)RandomAccess.GetLength(_data) / LsmtConstants.SectorSize;
        foreach (var (entry, at) in raw)
        {
            var tag = IsWarp ? entry.Tag - minimumTag : 0;
            if (tag > 1)
            {
                TurboOciFormatException.Throw(Format, "index.tag", at + 15, $"warp entry {entry} has tag {entry.Tag} (minimum {minimumTag}); only two backing files exist");
            }

            var normalised = entry.WithTag((byte)tag);
            CommittedLayer.CheckMappedRange([normalised], IsWarp ? 0UL : LsmtConstants.FirstDataSector, IsWarp ? CommittedLayer.MaxMappedSector : dataEndSector, _ => at);

            _index.Insert(normalised);
        }
    }

    public override int ReadAt(long offset, Span<byte> destination)
    {
        _indexLock.EnterReadLock();
        try
        {
            return ReadClamped(Overlapping(offset, destination.Length), offset, destination);
        }
        finally
        {
            _indexLock.ExitReadLock();
        }
    }

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length) => ExtentsThrough(GetEntries(), offset, length);

    protected override void ReadGap(long offset, Span<byte> destination)
    {
        if (_lower is null)
        {
            destination.Clear();
            return;
        }

        ReadBacking(_lower, offset, destination);
    }

    protected override IEnumerable<BlockExtent> GapExtents(long offset, long length) =>
        _lower is null ? base.GapExtents(offset, length) : LowerExtents(offset, length);

    private IEnumerable<BlockExtent> LowerExtents(long offset, long length)
    {
        var covered = offset;
        foreach (var extent in _lower!.GetExtents(offset, length))
        {
            covered = extent.End;
            yield return extent;
        }

        if (covered < offset + length)
        {
            yield return new BlockExtent(covered, offset + length - covered, ExtentKind.Zero);
        }
    }

    protected override void ReadEntryData(in SegmentMapping entry, long skip, Span<byte> destination)
    {
        var position = MappedPosition(entry, skip);
        if (entry.Tag == 1)
        {
            ReadBacking(_target ?? throw new InvalidOperationException("this warp layer has remote mappings but no target to read them from"),
                position, destination);
            return;
        }

        var read = 0;
        while (read < destination.Length)
        {
            var n = RandomAccess.Read(_data, destination[read..], position + read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        destination[read..].Clear();
    }

    public override SegmentMapping[] GetStackEntries() => SegmentIndex.ToIdentity(GetEntries());

    /// <summary>Resolves a run under the index's read lock, as <see cref="ReadAt"/> reads.</summary>
    public override bool TryGetFileRange(long offset, int length, out FileRange range)
    {
        _indexLock.EnterReadLock();
        try
        {
            return base.TryGetFileRange(offset, length, out range);
        }
        finally
        {
            _indexLock.ExitReadLock();
        }
    }

    private protected override ReadOnlySpan<SegmentMapping> GetEntriesForRanges(long offset, int length) => Overlapping(offset, length);

    /// <summary>The index entries a read of [offset, offset + length) may touch (the caller holds the read lock).</summary>
    private ReadOnlySpan<SegmentMapping> Overlapping(long offset, int length) =>
        offset < 0 ? [] : _index.Overlapping((ulong)offset >> LsmtConstants.SectorShift, Sector(checked(offset + length + LsmtConstants.SectorSize - 1)));

    protected override bool TryGetGapRange(long offset, int length, out FileRange range) =>
        _lower is null ? base.TryGetGapRange(offset, length, out range) : TryGetBackingRange(_lower, offset, length, out range);

    protected override bool TryGetEntryRange(in SegmentMapping entry, long skip, int length, out FileRange range)
    {
        var position = MappedPosition(entry, skip);
        if (entry.Tag == 1)
        {
            range = default;
            return _target is not null && TryGetBackingRange(_target, position, length, out range);
        }

        // As ReadEntryData: data past the end of the data file (a torn append) reads as zeros.
        var stored = Math.Max(0, RandomAccess.GetLength(_data) - position);
        range = stored == 0 ? FileRange.Zeros(length) : new FileRange(_data, position, (int)Math.Min(length, stored));
        return true;
    }

    protected internal override bool TryGetStackDataRange(in SegmentMapping entry, long skip, int length, out FileRange range) =>
        TryGetFileRange(MappedPosition(entry, skip), length, out range);

    protected internal override void ReadStackData(in SegmentMapping entry, long skip, Span<byte> destination) =>
        ReadAt(MappedPosition(entry, skip), destination);

    public override void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        CheckWriteRange(offset, source.Length);
        if (source.IsEmpty)
        {
            return;
        }

        lock (_writeLock)
        {
            var alignedStart = offset & ~(long)(LsmtConstants.SectorSize - 1);
            var alignedEnd = AlignUp(offset + source.Length);
            if (alignedStart == offset && alignedEnd == offset + source.Length)
            {
                WriteAligned(offset, source);
                return;
            }

            // Read-modify-write the partial sectors at either end.
            var buffer = new byte[alignedEnd - alignedStart];
            ReadAt(alignedStart, buffer.AsSpan(0, LsmtConstants.SectorSize));
            ReadAt(alignedEnd - LsmtConstants.SectorSize, buffer.AsSpan(buffer.Length - LsmtConstants.SectorSize));
            source.CopyTo(buffer.AsSpan((int)(offset - alignedStart)));
            WriteAligned(alignedStart, buffer);
        }
    }

    private void WriteAligned(long offset, ReadOnlySpan<byte> source)
    {
        for (var done = 0; done < source.Length; done += LsmtConstants.MaxIoSize)
        {
            var piece = source.Slice(done, Math.Min(LsmtConstants.MaxIoSize, source.Length - done));
            var logical = offset + done;
            long stored;
            if (IsWarp)
            {
                stored = logical;
            }
            else
            {
                stored = _dataEnd;
                _dataEnd += piece.Length;
            }

            RandomAccess.Write(_data, piece, stored);
            Append(new SegmentMapping(Sector(logical), (uint)(piece.Length >> LsmtConstants.SectorShift), Sector(stored)));
        }
    }

    /// <summary>
    /// Declares a range unused: it then reads as zeros and hides the layers below (overlaybd's discard). The
    /// 512-aligned middle becomes zeroed entries; partial sectors at the ends are written as zeros.
    /// </summary>
    public override void Trim(long offset, long length)
    {
        CheckWriteRange(offset, length);
        lock (_writeLock)
        {
            var start = AlignUp(offset);
            var end = (offset + length) & ~(long)(LsmtConstants.SectorSize - 1);
            if (start >= end)
            {
                WriteAt(offset, new byte[length]);
                return;
            }

            if (start > offset)
            {
                WriteAt(offset, new byte[start - offset]);
            }

            if (offset + length > end)
            {
                WriteAt(end, new byte[offset + length - end]);
            }

            for (var sector = Sector(start); sector < Sector(end); sector += LsmtConstants.MaxMappingLength)
            {
                var pieceLength = (uint)Math.Min(LsmtConstants.MaxMappingLength, Sector(end) - sector);
                var marker = IsWarp ? sector : Sector(_dataEnd);
                Append(new SegmentMapping(sector, pieceLength, marker, zeroed: true));
            }
        }
    }

    /// <summary>
    /// Warp layers only: maps [<paramref name="offset"/>, +<paramref name="count"/>) of the virtual disk to the target
    /// at <paramref name="targetOffset"/> (an offset in the uncompressed tar), in pieces of at most 16383 sectors,
    /// as overlaybd's RemoteData ioctl does. All three must be multiples of 512.
    /// </summary>
    public void AddRemoteMapping(long offset, long count, long targetOffset)
    {
        if (!IsWarp)
        {
            throw new InvalidOperationException("remote mappings exist only in warp layers");
        }

        if (((offset | count | targetOffset) & (LsmtConstants.SectorSize - 1)) != 0 || targetOffset < 0)
        {
            throw new ArgumentException($"remote mapping ({offset}, {count}, {targetOffset}) is not 512-aligned");
        }

        CheckWriteRange(offset, count);
        lock (_writeLock)
        {
            var sector = Sector(offset);
            var remote = Sector(targetOffset);
            for (var remaining = Sector(count); remaining > 0;)
            {
                var piece = (uint)Math.Min(LsmtConstants.MaxMappingLength, remaining);
                Append(new SegmentMapping(sector, piece, remote, tag: 1));
                sector += piece;
                remote += piece;
                remaining -= piece;
            }
        }
    }

    /// <summary>Logs an entry in the index file, then makes it visible to readers.</summary>
    private void Append(SegmentMapping entry)
    {
        if (_logBatch is not null)
        {
            // A scratch layer: one write per few thousand entries instead of a system call each.
            entry.Write(_logBatch.AsSpan(_logBatched));
            _logBatched += SegmentMapping.Size;
            if (_logBatched == _logBatch.Length)
            {
                WriteLogBatch();
            }
        }
        else
        {
            Span<byte> bytes = stackalloc byte[SegmentMapping.Size];
            entry.Write(bytes);
            RandomAccess.Write(_indexFile, bytes, _indexEnd);
            _indexEnd += SegmentMapping.Size;
        }

        _indexLock.EnterWriteLock();
        try
        {
            _index.Insert(entry);
        }
        finally
        {
            _indexLock.ExitWriteLock();
        }
    }

    public override void Flush()
    {
        if (_logBatch is not null)
        {
            lock (_writeLock)
            {
                WriteLogBatch();
            }

            return;
        }

        RandomAccess.FlushToDisk(_data);
        RandomAccess.FlushToDisk(_indexFile);
    }

    private void WriteLogBatch()
    {
        RandomAccess.Write(_indexFile, _logBatch.AsSpan(0, _logBatched), _indexEnd);
        _indexEnd += _logBatched;
        _logBatched = 0;
    }

    /// <summary>
    /// Changes the virtual size (overlaybd's update_vsize): rewrites it in both headers (for a warp layer, in the index
    /// header and the fs-meta file's length).
    /// </summary>
    public void Resize(long virtualSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(virtualSize);
        lock (_writeLock)
        {
            _header = _header with { VirtualSize = (ulong)virtualSize };
            RandomAccess.Write(_indexFile, _header.ToArray(), 0);
            if (IsWarp)
            {
                RandomAccess.SetLength(_data, Math.Max(virtualSize, RandomAccess.GetLength(_data)));
            }
            else
            {
                var block = new byte[LsmtConstants.HeaderBlockSize];
                RandomAccess.Read(_data, block, 0);
                var dataHeader = LsmtHeader.Read(block, 0, "data.header") with { VirtualSize = (ulong)virtualSize };
                RandomAccess.Write(_data, dataHeader.ToArray(), 0);
            }
        }
    }

    /// <summary>
    /// Commits this layer (overlaybd-commit DATA INDEX OUT): live data only, in offset order, adjacent entries folded,
    /// trims as zeroed entries, the index padded to 256 entries. A warp layer keeps its remote entries and is not padded.
    /// The uuid is the null UUID unless given; the parent is this layer's unless given (a warp commit: null unless given).
    /// </summary>
    public LayerWriter.CommitResult Commit(Stream output, CommitOptions? options = null)
    {
        options ??= new CommitOptions();
        lock (_writeLock)
        {
            var entries = GetEntries();
            var parent = options.ParentUuid is { } p ? LsmtUuid.Normalize(p) : IsWarp ? LsmtUuid.Null : _header.ParentUuid;
            var uuid = options.Uuid is { } u ? LsmtUuid.Normalize(u) : LsmtUuid.Null;
            return LayerWriter.WriteCommitted(output, entries, ReadEntryData, _header.VirtualSize, uuid, parent,
                IsWarp ? null : options.Message, IsWarp);
        }
    }

    private void ReadEntryData(in SegmentMapping entry, Span<byte> destination) => ReadEntryData(entry, 0, destination);

    private static ulong Sector(long bytes) => (ulong)bytes >> LsmtConstants.SectorShift;

    private static long AlignUp(long bytes) => checked(bytes + LsmtConstants.SectorSize - 1) & ~(long)(LsmtConstants.SectorSize - 1);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_logBatch is not null && !_data.IsClosed)
            {
                WriteLogBatch();
            }

            _data.Dispose();
            _indexFile.Dispose();
            _indexLock.Dispose();
            if (_ownsLower)
            {
                _lower?.Dispose();
            }
        }
    }
}
