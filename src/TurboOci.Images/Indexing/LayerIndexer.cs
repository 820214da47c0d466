using System.IO.Compression;
using System.Security.Cryptography;
using TurboOci.Formats.Ext4;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Formats.GzipIndex;
using TurboOci.Formats.Lsmt;
using TurboOci.Formats.ZFile;
using TurboOci.Interop.Linux;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Images.Indexing;

/// <summary>How <see cref="LayerIndexer"/> converts a layer.</summary>
public sealed record LayerIndexOptions
{
    /// <summary>Mapped (TurboOCI fs-meta, file data stays in the blob) or copied (a native overlaybd layer).</summary>
    public LayerDataMode Mode { get; init; } = LayerDataMode.Mapped;

    /// <summary>gzip index span in uncompressed bytes (overlaybd's default 1 MiB gives its bytes exactly).</summary>
    public int Span { get; init; } = GzipIndexOptions.DefaultSpan;

    /// <summary>
    /// Store only the window bytes the deflate data reads (<see cref="GzipIndexOptions.SparseWindows"/>): gzip.meta
    /// shrinks to about a fifth and overlaybd reads it the same; false writes overlaybd's gzip.meta byte for byte.
    /// </summary>
    public bool SparseWindows { get; init; } = true;

    /// <summary>
    /// The change and creation time stamped on inodes the layer creates or changes. A fixed time makes the
    /// same layer always give the same ext4.fs.meta, so meta image digests are reproducible (as
    /// accelerated-container-image's CI expects). Default: <c>SOURCE_DATE_EPOCH</c> when set, else the Unix epoch.
    /// </summary>
    public DateTimeOffset Timestamp { get; init; } = ReproducibleTimestamp();

    /// <summary>Called now and then with the number of blob bytes read so far.</summary>
    public Action<long>? Progress { get; init; }

    private static DateTimeOffset ReproducibleTimestamp() =>
        long.TryParse(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"), out var seconds) && seconds >= 0
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : DateTimeOffset.UnixEpoch;
}

/// <summary>What indexing one layer produced; paths are absolute, optional ones empty when not written.</summary>
/// <param name="LayerFile">The committed layer: <c>ext4.fs.meta</c> (mapped) or <c>overlaybd.commit</c> (copied).</param>
/// <param name="Target">The original blob the fs-meta's tag-1 entries point into (mapped mode only).</param>
/// <param name="BlobDigest">sha256 of the blob (<c>sha256:hex</c>), computed during the same pass.</param>
public sealed record IndexedLayer(string Folder, string LayerFile, string Target, string GzipIndex, string GzipSpans,
    LayerApplyResult Applied, long BlobBytes, string BlobDigest)
{
    /// <summary>The same outputs after their folder was renamed to <paramref name="folder"/>.</summary>
    public IndexedLayer MovedTo(string folder)
    {
        string Move(string path) => path.Length == 0 ? path : Path.Combine(folder, Path.GetFileName(path));
        return this with { Folder = folder, LayerFile = Move(LayerFile), GzipIndex = Move(GzipIndex), GzipSpans = Move(GzipSpans) };
    }

    /// <summary>This layer as a <c>config.v1.json</c> lower.</summary>
    public LowerLayer ToLower() => new() { File = LayerFile, TargetFile = Target, GzipIndex = GzipIndex, SpanDigests = GzipSpans };
}

/// <summary>
/// Converts one OCI layer blob (tar.gz or plain tar) in ONE streaming pass: the blob is read once; when it is
/// gzip, <see cref="GzipIndexingStream"/> inflates it while building <c>gzip.meta</c> and <c>gzip.spans</c>, and
/// the same uncompressed bytes drive <see cref="OciLayerApplier"/> over the lower stack. In mapped mode the
/// engine writes into a warp layer (metadata as tag 0, file data as tag-1 mappings to tar offsets) committed to
/// <c>ext4.fs.meta</c> as <c>overlaybd-commit -z --turboOCI</c> does (LZ4 ZFile, 4 KiB blocks, header
/// overwritten), beside the empty <c>.turbo.ociv1</c> marker. In copied mode the data are written and the
/// layer is committed to <c>overlaybd.commit</c>. Memory stays bounded: nothing holds the layer.
/// </summary>
public static class LayerIndexer
{
    public const string FsMetaName = "ext4.fs.meta";
    public const string NativeLayerName = "overlaybd.commit";
    public const string GzipIndexName = "gzip.meta";
    public const string GzipSpansName = "gzip.spans";
    public const string TurboMarkerName = ".turbo.ociv1";

    private static readonly ZFileWriterOptions s_commitZFile = new() { Algorithm = ZFileAlgorithm.Lz4, BlockSize = 4096, OverwriteHeader = true };

    /// <param name="blobPath">The layer blob, unmodified.</param>
    /// <param name="lowers">The disk below this layer (base layer and the layers already indexed); read, never written.</param>
    /// <param name="folder">Output folder, created if missing.</param>
    public static IndexedLayer Index(string blobPath, BlockSource lowers, string folder, LayerIndexOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(blobPath);
        ArgumentNullException.ThrowIfNull(lowers);
        options ??= new LayerIndexOptions();
        Directory.CreateDirectory(folder);
        folder = Path.GetFullPath(folder);
        var mapped = options.Mode == LayerDataMode.Mapped;
        var gzip = IsGzip(blobPath);
        var scratchData = Path.Combine(folder, ".indexing.data");
        var scratchIndex = Path.Combine(folder, ".indexing.index");
        var layerFile = Path.Combine(folder, mapped ? FsMetaName : NativeLayerName);
        var gzipIndex = mapped && gzip ? Path.Combine(folder, GzipIndexName) : "";
        var gzipSpans = mapped && gzip ? Path.Combine(folder, GzipSpansName) : "";
        try
        {
            LayerApplyResult applied;
            long blobBytes;
            string digest;

            // The warp layer gets no target: indexing never reads file data back.
            // A scratch layer: nothing is forced to disk (the files are deleted after the commit; forcing them costs
            // a sync per engine flush, and blocks allocated on disk make the delete slow).
            using (var upper = mapped
                ? WritableLayer.CreateWarp(scratchData, scratchIndex, 0, target: null, lower: lowers, scratch: true)
                : WritableLayer.Create(scratchData, scratchIndex, 0, lower: lowers, scratch: true))
            {
                (applied, blobBytes, digest) = Apply(blobPath, upper, mapped, gzip, gzipIndex, gzipSpans, options);

                // The commit streams straight into the ZFile compressor (which compresses batches on all cores).
                using var output = new FileStream(layerFile, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16);
                using var compressed = ZFileWriter.CreateStream(output, s_commitZFile, leaveOpen: true);
                upper.Commit(compressed);
                compressed.Complete();
            }

            if (mapped)
            {
                File.WriteAllBytes(Path.Combine(folder, TurboMarkerName), []);
            }

            return new IndexedLayer(folder, layerFile, mapped ? Path.GetFullPath(blobPath) : "", gzipIndex, gzipSpans, applied, blobBytes, digest);
        }
        finally
        {
            File.Delete(scratchData);
            File.Delete(scratchIndex);
        }
    }

    private static (LayerApplyResult Applied, long BlobBytes, string Digest) Apply(string blobPath, WritableLayer upper, bool mapped, bool gzip,
        string gzipIndex, string gzipSpans, LayerIndexOptions options)
    {
        using var blob = new CountingStream(new FileStream(blobPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), options.Progress);
        using var fs = Ext4FileSystem.Open(upper, writable: true);
        var timestamp = Ext4Time.FromDateTimeOffset(options.Timestamp);
        fs.Clock = () => timestamp;
        var applier = new OciLayerApplier(fs, options.Mode, mapped ? new WarpMapper(upper) : null);
        if (!gzip)
        {
            var result = applier.Apply(blob);
            Drain(blob);
            return (result, blob.BytesRead, blob.Digest());
        }

        if (!mapped)
        {
            // A native layer needs no index: .NET's inflater reads every member as gzip -d does.
            using var inflated = new GZipStream(blob, CompressionMode.Decompress, leaveOpen: true);
            var result = applier.Apply(inflated);
            Drain(inflated);
            Drain(blob);
            return (result, blob.BytesRead, blob.Digest());
        }

        using var indexOutput = new FileStream(gzipIndex, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        // Sparse windows are mostly zeros: zlib level 1 stores them 16 % larger than level 6 in under half the time,
        // time taken on the core that parses the tar while the inflater runs (overlaybd inflates any level).
        var indexOptions = new GzipIndexOptions
        {
            Span = options.Span,
            SpanDigests = true,
            SparseWindows = options.SparseWindows,
            Level = options.SparseWindows ? 1 : new GzipIndexOptions().Level,
        };

        // Inflating is the critical path (as it is for pigz -dc): the blob is mapped and inflated where it lies (no
        // copies on the inflating thread), its SHA-256 is taken on another core, and tar parsing + ext4 run behind
        // the inflater on a pipeline that reads the whole stream.
        using var blobHandle = File.OpenHandle(blobPath);
        using var blobView = MappedFileView.Open(blobHandle);

        // The digest is taken through a mapping of its own, released as it goes: the hasher runs far ahead of the
        // inflater, and pages it leaves mapped in the shared view would count in this process's memory until the
        // inflater caught up.
        using var hashView = MappedFileView.Open(blobHandle);
        using var stopHashing = new CancellationTokenSource();
        var blobDigest = Task.Run(() => Sha256(hashView, stopHashing.Token));
        try
        {
            using var indexing = new GzipIndexingStream(blobView, indexOutput, SystemZlib.Instance, SystemZlib.Instance, indexOptions);
            LayerApplyResult applied;
            using (var pipelined = new PipelinedReadStream(indexing, afterChunk: () => options.Progress?.Invoke(indexing.CompressedPosition)))
            {
                applied = applier.Apply(pipelined);
                Drain(pipelined);
            }

            var built = indexing.Complete();
            File.WriteAllBytes(gzipSpans, built.Spans!.ToBytes());
            return (applied, blobView.Length, blobDigest.GetAwaiter().GetResult());
        }
        finally
        {
            // The hasher reads the mapping that is unmapped on return: after an error it stops, and is waited for.
            stopHashing.Cancel();
            try
            {
                blobDigest.Wait();
            }
            catch (AggregateException)
            {
                // Cancelled, or failing with the error already on its way out.
            }
        }
    }

    private static string Sha256(IByteView blob, CancellationToken stop)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        const int Step = 4 << 20;
        for (long offset = 0; offset < blob.Length; offset += Step)
        {
            stop.ThrowIfCancellationRequested();
            sha256.AppendData(blob.Slice(offset, (int)Math.Min(Step, blob.Length - offset)));
            blob.ReleaseBefore(offset);
        }

        return "sha256:" + Convert.ToHexStringLower(sha256.GetHashAndReset());
    }

    /// <summary>Reads what the tar parser left after the end-of-archive blocks, so every blob byte is hashed and counted.</summary>
    private static void Drain(Stream stream)
    {
        var buffer = new byte[1 << 16];
        while (stream.Read(buffer) > 0)
        {
        }
    }

    private static bool IsGzip(string path)
    {
        Span<byte> magic = stackalloc byte[2];
        using var file = File.OpenRead(path);
        return file.ReadAtLeast(magic, 2, throwOnEndOfStream: false) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    }

    /// <summary>File data become tag-1 entries: device range → tar offset, in the 512-byte units the warp layer keeps.</summary>
    private sealed class WarpMapper(WritableLayer warp) : IFileDataMapper
    {
        public void Map(long deviceOffset, long length, long tarOffset) => warp.AddRemoteMapping(deviceOffset, length, tarOffset);
    }

    /// <summary>A read-only pass-through that counts (for progress) and hashes (for the folder name) what it reads.</summary>
    private sealed class CountingStream(Stream inner, Action<long>? progress) : ReadOnlyForwardStream
    {
        private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public long BytesRead { get; private set; }

        public string Digest() => "sha256:" + Convert.ToHexStringLower(_sha256.GetHashAndReset());

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            _sha256.AppendData(buffer[..n]);
            BytesRead += n;
            progress?.Invoke(BytesRead);
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                _sha256.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
