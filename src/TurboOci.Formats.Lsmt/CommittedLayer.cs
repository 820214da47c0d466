using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// A read-only LSMT layer (formats doc §1.4): a committed, merged or sealed layer file, already un-tarred and
/// decompressed. Opened from its trailer; the index is validated before it is trusted. With a warp target
/// (§1.6.2), tag-1 entries read the target at an offset of the uncompressed tar instead of this file.
/// </summary>
public sealed class CommittedLayer : MappedLayer
{
    private const string Format = LsmtConstants.FormatName;

    private readonly BlockSource _file;
    private readonly BlockSource? _target;
    private readonly bool _ownsFile;
    private readonly SegmentIndex _index;
    private IDisposable[] _alsoDispose = [];

    private CommittedLayer(BlockSource file, BlockSource? target, bool ownsFile, LsmtHeader header, LsmtHeader trailer, SegmentIndex index)
    {
        _file = file;
        _target = target;
        _ownsFile = ownsFile;
        Header = header;
        Trailer = trailer;
        _index = index;
    }

    /// <summary>The header block (for a committed file its index fields are 0).</summary>
    public LsmtHeader Header { get; }

    /// <summary>The trailer block: authoritative for the index position, vsize and uuid.</summary>
    public LsmtHeader Trailer { get; }

    /// <summary>The loaded index (padding dropped; tags 0 except in a warp layer, where 0 = this file, 1 = target).</summary>
    public SegmentIndex Index => _index;

    /// <summary>The file this layer was read from (the decompressed view when the blob is a ZFile).</summary>
    public BlockSource File => _file;

    public bool IsWarp => _target is not null;

    public override long Size => (long)Trailer.VirtualSize;

    public override string Uuid => Trailer.Uuid;

    public override string ParentUuid => Trailer.ParentUuid;

    /// <summary>Opens a committed layer. <paramref name="file"/> is the bare LSMT bytes (see <see cref="LayerBlob"/> for blobs).</summary>
    public static CommittedLayer Open(BlockSource file, bool ownsFile = false) => Open(file, warpTarget: null, ownsFile);

    /// <summary>
    /// Opens a committed layer; with <paramref name="warpTarget"/> it is a warp file whose tag-1 entries read
    /// the target (the uncompressed tar). Tags are normalised by subtracting the smallest tag present, and the
    /// mapped-range check is off, exactly as overlaybd's <c>open_warpfile_ro</c>.
    /// </summary>
    public static CommittedLayer Open(BlockSource file, BlockSource? warpTarget, bool ownsFile = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        var size = file.Size;
        if (size < 2L * LsmtConstants.HeaderBlockSize)
        {
            TurboOciFormatException.Throw(Format, "file", size,
                $"a committed layer is at least a header and a trailer (8192 bytes); this file has {size}");
        }

        var block = new byte[LsmtConstants.HeaderBlockSize];
        file.ReadExactlyAt(0, block);
        var header = LsmtHeader.Read(block, 0, "header");
        if (!header.IsHeader)
        {
            TurboOciFormatException.Throw(Format, "header.flags", LsmtHeader.FlagsOffset, $"flags 0x{(uint)header.Flags:X} lack the header bit");
        }

        if (!header.IsDataFile)
        {
            TurboOciFormatException.Throw(Format, "header.flags", LsmtHeader.FlagsOffset,
                $"flags 0x{(uint)header.Flags:X} mark an index file; a committed layer is a data file (open RW index files with WritableLayer)");
        }

        var trailerOffset = size - LsmtConstants.HeaderBlockSize;
        file.ReadExactlyAt(trailerOffset, block);
        var trailer = LsmtHeader.Read(block, trailerOffset, "trailer");
        CheckTrailer(trailer, trailerOffset);

        var entries = LoadIndex(file, trailer);
        var index = warpTarget is null ? ValidatePlain(entries, trailer) : NormaliseWarp(entries, trailer);
        return new CommittedLayer(file, warpTarget, ownsFile, header, trailer, index);
    }

    private static void CheckTrailer(LsmtHeader trailer, long trailerOffset)
    {
        var flagsAt = trailerOffset + LsmtHeader.FlagsOffset;
        if (trailer.IsHeader)
        {
            TurboOciFormatException.Throw(Format, "trailer.flags", flagsAt,
                $"the last 4 KiB block has the header bit set (flags 0x{(uint)trailer.Flags:X}): the layer is not sealed or the file is truncated");
        }

        if (!trailer.IsDataFile || !trailer.IsSealed)
        {
            TurboOciFormatException.Throw(Format, "trailer.flags", flagsAt,
                $"flags 0x{(uint)trailer.Flags:X}: a trailer must have the data-file and sealed bits");
        }

        if (trailer.IndexSize > LsmtConstants.MaxReadOnlyIndexEntries)
        {
            TurboOciFormatException.Throw(Format, "trailer.index_size", trailerOffset + LsmtHeader.IndexSizeOffset,
                $"{trailer.IndexSize} entries is more than the {LsmtConstants.MaxReadOnlyIndexEntries} a read-only layer may have");
        }

        if (trailer.IndexOffset > (ulong)trailerOffset || trailer.IndexSize * SegmentMapping.Size > (ulong)trailerOffset - trailer.IndexOffset)
        {
            TurboOciFormatException.Throw(Format, "trailer.index_offset", trailerOffset + LsmtHeader.IndexOffsetOffset,
                $"the index ({trailer.IndexSize} entries at {trailer.IndexOffset}) does not fit before the trailer at {trailerOffset}");
        }

        if (trailer.VirtualSize > long.MaxValue)
        {
            TurboOciFormatException.Throw(Format, "trailer.virtual_size", trailerOffset + LsmtHeader.VirtualSizeOffset,
                $"virtual size {trailer.VirtualSize} is impossible");
        }
    }

    /// <summary>Reads the index bytes (bounded by the trailer checks above) and drops padding entries.</summary>
    private static SegmentMapping[] LoadIndex(BlockSource file, LsmtHeader trailer)
    {
        var bytes = new byte[checked((int)trailer.IndexSize * SegmentMapping.Size)];
        file.ReadExactlyAt((long)trailer.IndexOffset, bytes);
        var all = SegmentMapping.ReadAll(bytes);
        var kept = 0;
        foreach (var entry in all)
        {
            if (!entry.IsPadding)
            {
                all[kept++] = entry;
            }
        }

        return kept == all.Length ? all : all[..kept];
    }

    private static SegmentIndex ValidatePlain(SegmentMapping[] entries, LsmtHeader trailer)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = entries[i].WithTag(0);
        }

        CheckOrder(entries, trailer);
        CheckMappedRange(entries, LsmtConstants.FirstDataSector, trailer.IndexOffset / LsmtConstants.SectorSize, i => (long)trailer.IndexOffset + (i * SegmentMapping.Size));
        return new SegmentIndex(entries);
    }

    private static SegmentIndex NormaliseWarp(SegmentMapping[] entries, LsmtHeader trailer)
    {
        if (entries.Length > 0)
        {
            var minimum = entries.Min(e => e.Tag);
            for (var i = 0; i < entries.Length; i++)
            {
                var tag = entries[i].Tag - minimum;
                if (tag > 1)
                {
                    TurboOciFormatException.Throw(Format, "index.tag", (long)trailer.IndexOffset + (i * SegmentMapping.Size) + 15,
                        $"warp entry {i} has tag {entries[i].Tag} (minimum {minimum}); only two backing files exist");
                }

                entries[i] = entries[i].WithTag((byte)tag);
            }
        }

        CheckOrder(entries, trailer);
        CheckMappedRange(entries, 0, MaxMappedSector, i => (long)trailer.IndexOffset + (i * SegmentMapping.Size));
        return new SegmentIndex(entries);
    }

    private static void CheckOrder(SegmentMapping[] entries, LsmtHeader trailer) =>
        SegmentIndex.CheckOrder(entries, i => new TurboOciFormatException(Format, "index", (long)trailer.IndexOffset,
            $"incorrect segment mappings: entry {entries[i]} (the {i}th real entry) overlaps or precedes {entries[i - 1]}"));

    /// <summary>
    /// Where no mapped-range check applies (warp files, overlaybd disables it) mapped data must still be addressable:
    /// its end in bytes must fit a signed 64-bit file offset.
    /// </summary>
    internal const ulong MaxMappedSector = (ulong)long.MaxValue / LsmtConstants.SectorSize;

    /// <summary>Every data entry must lie inside [first, end) sectors of its file; zeroed entries may sit at its end (formats doc §1.3 rule 2).</summary>
    internal static void CheckMappedRange(ReadOnlySpan<SegmentMapping> entries, ulong first, ulong end, Func<int, long> entryOffset)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = entries[i];
            var ok = entry.Zeroed
                ? entry.MappedOffset >= first && entry.MappedOffset <= end
                : entry.MappedOffset >= first && entry.MappedOffset < end && entry.MappedEnd > first && entry.MappedEnd <= end && entry.Length > 0;
            if (!ok)
            {
                TurboOciFormatException.Throw(Format, "index.moffset", entryOffset(i),
                    $"incorrect segment mappings: entry {entry} points outside the data area [{first}, {end}) sectors");
            }
        }
    }

    public override int ReadAt(long offset, Span<byte> destination) => ReadClamped(_index.Entries, offset, destination);

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length) => ExtentsThrough(_index.RawEntries, offset, length);

    protected override void ReadEntryData(in SegmentMapping entry, long skip, Span<byte> destination)
    {
        var backing = entry.Tag == 0 ? _file : _target!;
        ReadBacking(backing, MappedPosition(entry, skip), destination);
    }

    private protected override ReadOnlySpan<SegmentMapping> GetEntriesForRanges(long offset, int length) => _index.Entries;

    protected override bool TryGetEntryRange(in SegmentMapping entry, long skip, int length, out FileRange range) =>
        TryGetBackingRange(entry.Tag == 0 ? _file : _target!, MappedPosition(entry, skip), length, out range);

    protected internal override bool TryGetStackDataRange(in SegmentMapping entry, long skip, int length, out FileRange range) =>
        IsWarp
            ? TryGetRangeThrough(_index.Entries, MappedPosition(entry, skip), length, out range)
            : TryGetEntryRange(entry, skip, length, out range);

    public override SegmentMapping[] GetStackEntries()
    {
        if (!IsWarp)
        {
            return _index.Entries.ToArray();
        }

        // A warp layer resolves its two backing files itself: the stack sees identity mappings into this layer.
        return SegmentIndex.ToIdentity(_index.Entries);
    }

    protected internal override void ReadStackData(in SegmentMapping entry, long skip, Span<byte> destination)
    {
        if (IsWarp)
        {
            ReadThrough(_index.Entries, MappedPosition(entry, skip), destination);
        }
        else
        {
            ReadEntryData(entry, skip, destination);
        }
    }

    /// <summary>Makes this layer dispose the sources it was opened through (a decompressor, a tar slice, the blob).</summary>
    internal CommittedLayer AlsoDispose(params IDisposable[] owned)
    {
        _alsoDispose = owned;
        return this;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_ownsFile)
            {
                _file.Dispose();
            }

            foreach (var owned in _alsoDispose)
            {
                owned.Dispose();
            }
        }
    }
}
