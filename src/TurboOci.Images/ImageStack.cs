using TurboOci.Formats.GzipIndex;
using TurboOci.Formats.Lsmt;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Images;

/// <summary>
/// The virtual disk a <c>config.v1.json</c> describes: its lowers stacked bottom first (native layers, and
/// TurboOCI warp layers whose tag-1 extents read the original blob, through its gzip index when it has one),
/// with the optional writable upper on top. The stack owns every file and source it opened.
/// </summary>
/// <remarks>Local files only for now: a lower that names only a digest or a dir is refused.</remarks>
public sealed class ImageStack : BlockSource
{
    private readonly BlockSource _top;
    private readonly List<IDisposable> _owned;

    private ImageStack(BlockSource top, List<IDisposable> owned)
    {
        _top = top;
        _owned = owned;
    }

    /// <summary>The original layer blobs (TurboOCI targets) this stack reads file data from, with their read counters.</summary>
    public IReadOnlyList<CountingBlockSource> TargetBlobs => _owned.OfType<CountingBlockSource>().ToList();

    public override long Size => _top.Size;

    public override bool CanWrite => _top.CanWrite;

    /// <summary>
    /// Opens the stack. When the config names a <c>resultFile</c>, it is overwritten with <c>success</c> or
    /// <c>failed:&lt;reason&gt;</c> (no newline), as overlaybd does after creating a device.
    /// </summary>
    public static ImageStack Open(ImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        try
        {
            var stack = OpenCore(config);
            WriteResult(config, "success");
            return stack;
        }
        catch (Exception e)
        {
            WriteResult(config, $"failed:{e.Message}");
            throw;
        }
    }

    /// <summary>Opens the lowers of <paramref name="config"/> only (the read-only part), as the indexer stacks new layers on them.</summary>
    public static ImageStack OpenLowers(ImageConfig config) => OpenCore(config with { Upper = null });

    private static ImageStack OpenCore(ImageConfig config)
    {
        var owned = new List<IDisposable>();
        try
        {
            var layers = new List<MappedLayer>();
            foreach (var (lower, i) in config.Lowers.Select((l, i) => (l, i)))
            {
                layers.Add(OpenLower(lower, i, owned));
            }

            if (config.AccelerationLayer && layers.Count > 0)
            {
                // The last lower only carries a trace; it holds no disk data.
                layers.RemoveAt(layers.Count - 1);
            }

            var lowers = new LayerStack(layers);
            owned.Add(lowers);
            BlockSource top = lowers;
            if (config.Upper is { } upper)
            {
                BlockSource? target = null;
                if (upper.Target.Length > 0)
                {
                    target = OpenTarget(upper.Target, upper.GzipIndex, spanDigests: "", owned);
                }

                var writable = target is null
                    ? WritableLayer.Open(upper.Data, upper.Index, lower: lowers)
                    : WritableLayer.OpenWarp(upper.Data, upper.Index, target, lower: lowers);
                owned.Add(writable);
                top = writable;
            }

            return new ImageStack(top, owned);
        }
        catch
        {
            DisposeAll(owned);
            throw;
        }
    }

    private static CommittedLayer OpenLower(LowerLayer lower, int position, List<IDisposable> owned)
    {
        if (lower.File.Length == 0)
        {
            throw new NotSupportedException($"lowers[{position}] has no local file (dir/digest-only layers need the registry, not supported here yet)");
        }

        BlockSource? target = null;
        if (lower.TargetFile.Length > 0)
        {
            target = OpenTarget(lower.TargetFile, lower.GzipIndex, lower.SpanDigests, owned);
        }
        else if (lower.TargetDigest.Length > 0)
        {
            throw new NotSupportedException($"lowers[{position}] names its target only by digest (remote targets are not supported here yet)");
        }

        var layer = LayerBlob.OpenFile(lower.File, target);
        owned.Add(layer);
        return layer;
    }

    /// <summary>The uncompressed tar a warp layer's tag-1 entries point into: the blob itself, or its gzip view.</summary>
    private static BlockSource OpenTarget(string targetFile, string gzipIndex, string spanDigests, List<IDisposable> owned)
    {
        var blob = new CountingBlockSource(FileBlockSource.OpenRead(targetFile), ownsInner: true);
        owned.Add(blob);
        if (gzipIndex.Length == 0)
        {
            return blob;
        }

        // The index reads its windows from the file on demand: it stays open as long as the stack.
        var indexFile = FileBlockSource.OpenRead(gzipIndex);
        owned.Add(indexFile);
        var index = GzipSeekIndex.Load(indexFile, SystemZlib.Instance);

        GzipSpanDigests? digests = null;
        if (spanDigests.Length > 0)
        {
            using var spansFile = FileBlockSource.OpenRead(spanDigests);
            digests = GzipSpanDigests.Read(spansFile);
        }

        var source = new GzipIndexedSource(blob, index, SystemZlib.Instance, digests);
        owned.Add(source);
        return source;
    }

    private static void WriteResult(ImageConfig config, string result)
    {
        if (config.ResultFile.Length > 0)
        {
            File.WriteAllText(config.ResultFile, result);
        }
    }

    private static void DisposeAll(List<IDisposable> owned)
    {
        for (var i = owned.Count - 1; i >= 0; i--)
        {
            owned[i].Dispose();
        }
    }

    public override int ReadAt(long offset, Span<byte> destination) => _top.ReadAt(offset, destination);

    public override ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        _top.ReadAtAsync(offset, destination, cancellationToken);

    public override void WriteAt(long offset, ReadOnlySpan<byte> source) => _top.WriteAt(offset, source);

    public override void Flush() => _top.Flush();

    public override void Trim(long offset, long length) => _top.Trim(offset, length);

    public override IEnumerable<BlockExtent> GetExtents(long offset, long length) => _top.GetExtents(offset, length);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposeAll(_owned);
        }
    }
}
