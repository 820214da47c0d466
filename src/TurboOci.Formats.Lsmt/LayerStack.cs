using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// The merged read-only view of a stack of layers (formats doc §1.7), lowest first as in an image config.
/// The layers' indexes are merged once, at open, into one flat sorted index whose tag says which layer
/// (counted from the top) holds each range; a read is then one binary search and direct reads of the layers'
/// backing files. Upper entries, zeroed ones included, hide lower ones; ranges no layer maps read as zeros.
/// Immutable after construction, so any number of threads may read at once.
/// </summary>
public sealed class LayerStack : MappedLayer
{
    private readonly MappedLayer[] _topFirst;
    private readonly SegmentIndex _index;
    private readonly bool _ownsLayers;
    private readonly long _size;

    /// <param name="bottomFirst">The layers, lowest first; at most 255.</param>
    /// <param name="ownsLayers">Whether disposing the stack disposes the layers.</param>
    public LayerStack(IReadOnlyList<MappedLayer> bottomFirst, bool ownsLayers = false)
    {
        ArgumentNullException.ThrowIfNull(bottomFirst);
        if (bottomFirst.Count > LsmtConstants.MaxStackLayers)
        {
            throw new ArgumentException($"at most {LsmtConstants.MaxStackLayers} layers can be stacked; got {bottomFirst.Count}", nameof(bottomFirst));
        }

        _topFirst = bottomFirst.Reverse().ToArray();
        _ownsLayers = ownsLayers;
        _index = new SegmentIndex(SegmentIndex.MergeLayers(_topFirst.Select(l => l.GetStackEntries()).ToList()));

        // The device size is the top-most non-zero virtual size (an overlaybd merge may record 0).
        _size = _topFirst.Select(l => l.Size).FirstOrDefault(s => s > 0);
    }

    /// <summary>The layers, lowest first.</summary>
    public IReadOnlyList<MappedLayer> Layers => _topFirst.Reverse().ToArray();

    /// <summary>The merged index; each entry's tag is the level of its layer counted from the top (0 = top).</summary>
    public SegmentIndex Index => _index;

    public override long Size => _size;

    public override string Uuid => _topFirst.Length > 0 ? _topFirst[0].Uuid : LsmtUuid.Null;

    public override string ParentUuid => _topFirst.Length > 0 ? _topFirst[^1].ParentUuid : LsmtUuid.Null;

    public override int ReadAt(long offset, Span<byte> destination) => ReadClamped(_index.Entries, offset, destination);

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length) => ExtentsThrough(_index.RawEntries, offset, length);

    protected override void ReadEntryData(in SegmentMapping entry, long skip, Span<byte> destination) =>
        _topFirst[entry.Tag].ReadStackData(entry.WithTag(0), skip, destination);

    private protected override ReadOnlySpan<SegmentMapping> GetEntriesForRanges(long offset, int length) => _index.Entries;

    protected override bool TryGetEntryRange(in SegmentMapping entry, long skip, int length, out FileRange range) =>
        _topFirst[entry.Tag].TryGetStackDataRange(entry.WithTag(0), skip, length, out range);

    protected internal override bool TryGetStackDataRange(in SegmentMapping entry, long skip, int length, out FileRange range) =>
        TryGetRangeThrough(_index.Entries, MappedPosition(entry, skip), length, out range);

    /// <summary>A stack stacked on something else looks like one layer: identity mappings resolved by this stack.</summary>
    public override SegmentMapping[] GetStackEntries() => SegmentIndex.ToIdentity(_index.Entries);

    protected internal override void ReadStackData(in SegmentMapping entry, long skip, Span<byte> destination) =>
        ReadThrough(_index.Entries, MappedPosition(entry, skip), destination);

    /// <summary>Reads the data of a merged-index entry (as listed by <see cref="Index"/>), for merging into one layer.</summary>
    internal void ReadMergedEntry(in SegmentMapping entry, Span<byte> destination) => ReadEntryData(entry, 0, destination);

    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsLayers)
        {
            foreach (var layer in _topFirst)
            {
                layer.Dispose();
            }
        }
    }
}
