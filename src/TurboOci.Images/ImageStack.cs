using TurboOci.Formats.GzipIndex;
using TurboOci.Formats.Lsmt;
using TurboOci.Interop.Zlib;
using TurboOci.Registry;
using TurboOci.Storage;

namespace TurboOci.Images;

/// <summary>
/// The virtual disk a <c>config.v1.json</c> describes: its lowers stacked bottom first (native layers, and
/// TurboOCI warp layers whose tag-1 extents read the original blob, through its gzip index when it has one),
/// with the optional writable upper on top. The stack owns every file and source it opened.
/// </summary>
/// <remarks>
/// A lower's blob is the first local candidate that exists (<c>file</c>, then <c>dir</c>'s
/// <c>overlaybd.commit</c>, <c>.commit</c>, <c>overlaybd.sealed</c>), else <c>repoBlobUrl</c> + <c>digest</c>
/// read lazily through a <see cref="RegistryBlobStore"/>; a TurboOCI target is <c>targetFile</c>, else
/// <c>targetDigest</c> from the registry, the same way.
/// </remarks>
public sealed class ImageStack : BlockSource, IFileRangeSource
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
    public static ImageStack Open(ImageConfig config) => Open(config, registry: null);

    /// <summary>Opens the stack; lowers and targets that are not local are read from <paramref name="registry"/> (shared, not owned).</summary>
    public static ImageStack Open(ImageConfig config, RegistryBlobStore? registry)
    {
        ArgumentNullException.ThrowIfNull(config);
        try
        {
            var stack = OpenCore(config, registry);
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
    public static ImageStack OpenLowers(ImageConfig config) => OpenLowers(config, registry: null);

    /// <summary>As <see cref="OpenLowers(ImageConfig)"/>, with registry-backed lowers read from <paramref name="registry"/>.</summary>
    public static ImageStack OpenLowers(ImageConfig config, RegistryBlobStore? registry) => OpenCore(config with { Upper = null }, registry);

    private static ImageStack OpenCore(ImageConfig config, RegistryBlobStore? registry)
    {
        var remote = new RemoteBlobs(config.RepoBlobUrl, registry);
        var owned = new List<IDisposable>();
        try
        {
            var layers = new List<MappedLayer>();
            foreach (var (lower, i) in config.Lowers.Select((l, i) => (l, i)))
            {
                layers.Add(OpenLower(lower, i, remote, owned));
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
                    target = OpenTarget(OpenCounted(FileBlockSource.OpenRead(upper.Target), owned), upper.GzipIndex, spanDigests: "", owned);
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

    private static CommittedLayer OpenLower(LowerLayer lower, int position, RemoteBlobs remote, List<IDisposable> owned)
    {
        BlockSource? target = null;
        if (lower.TargetFile.Length > 0)
        {
            target = OpenTarget(OpenCounted(FileBlockSource.OpenRead(lower.TargetFile), owned), lower.GzipIndex, lower.SpanDigests, owned);
        }
        else if (lower.TargetDigest.Length > 0)
        {
            var blob = remote.Open($"lowers[{position}].targetDigest", lower.TargetDigest, size: 0);
            target = OpenTarget(OpenCounted(blob, owned), lower.GzipIndex, lower.SpanDigests, owned);
        }

        CommittedLayer layer;
        if (LocalCandidate(lower) is { } path)
        {
            layer = LayerBlob.OpenFile(path, target);
        }
        else if (lower.Digest.Length > 0)
        {
            layer = LayerBlob.Open(remote.Open($"lowers[{position}].digest", lower.Digest, lower.Size), target, ownsBlob: true);
        }
        else
        {
            throw new ArgumentException($"lowers[{position}] has neither a local file nor a digest to fetch");
        }

        owned.Add(layer);
        return layer;
    }

    /// <summary>
    /// overlaybd's local candidates in order (formats doc §3.4): <c>file</c>, then the dir's commit files; the
    /// first that exists. A named <c>file</c> that is missing with nothing to fetch instead is still returned,
    /// so the error names it.
    /// </summary>
    private static string? LocalCandidate(LowerLayer lower)
    {
        string[] dirCandidates = lower.Dir.Length == 0 ? [] : ["overlaybd.commit", ".commit", "overlaybd.sealed"];
        var existing = new[] { lower.File }.Concat(dirCandidates.Select(name => Path.Combine(lower.Dir, name)))
            .FirstOrDefault(path => path.Length > 0 && File.Exists(path));
        return existing ?? (lower.File.Length > 0 && lower.Digest.Length == 0 ? lower.File : null);
    }

    private static CountingBlockSource OpenCounted(BlockSource blob, List<IDisposable> owned)
    {
        var counted = new CountingBlockSource(blob, ownsInner: true);
        owned.Add(counted);
        return counted;
    }

    /// <summary>The uncompressed tar a warp layer's tag-1 entries point into: the blob itself, or its gzip view.</summary>
    private static BlockSource OpenTarget(CountingBlockSource blob, string gzipIndex, string spanDigests, List<IDisposable> owned)
    {
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

    /// <summary>Blobs named by digest, fetched from the config's <c>repoBlobUrl</c> through the node's store.</summary>
    private sealed class RemoteBlobs(string repoBlobUrl, RegistryBlobStore? store)
    {
        public BlockSource Open(string field, string digest, long size)
        {
            if (store is null)
            {
                throw new NotSupportedException($"{field} names a blob that is not local, and no registry store was given to fetch it");
            }

            if (repoBlobUrl.Length == 0)
            {
                throw new ArgumentException($"{field} must be fetched but the config has an empty repoBlobUrl");
            }

            return store.Open(repoBlobUrl, digest, size);
        }
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

    /// <summary>Where the top's bytes are stored (a frontend sends them from mappings of those files).</summary>
    public bool TryGetFileRange(long offset, int length, out FileRange range) => FileRanges.TryResolve(_top, offset, length, out range);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposeAll(_owned);
        }
    }
}
