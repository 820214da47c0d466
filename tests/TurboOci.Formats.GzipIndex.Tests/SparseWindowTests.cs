using TurboOci.Interop.Zlib;
using TurboOci.Storage;
using TurboOci.Storage.Compression;
using TurboOci.Testing;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>
/// Sparse windows (only the bytes the deflate data reads are kept): the same access points as the full
/// (overlaybd byte-identical) index, and every span inflated from them exactly as overlaybd's reader does
/// (raw zlib, <c>inflatePrime</c>, <c>inflateSetDictionary</c>) gives the bytes <c>gzip -dc</c> gives.
/// </summary>
public sealed class SparseWindowTests
{
    [Fact]
    public void OnOverlaybdsReferenceLayerTheSparseIndexHasOverlaybdsPointsAndDecodesTheSame()
    {
        var layer = File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz"));
        var overlaybds = File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta"));
        var (sparse, _) = GzipTestData.BuildIndex(layer, new GzipIndexOptions { SparseWindows = true });
        AssertSameDecoding(layer, overlaybds, sparse);
        Assert.True(sparse.Length < overlaybds.Length * 3 / 4, $"sparse index {sparse.Length} bytes, overlaybd's {overlaybds.Length}");
    }

    [Theory]
    [InlineData("gzip", "-6 -n", false)]
    [InlineData("gzip", "-9 -n", true)]
    [InlineData("pigz", "-n -b 128", false)]
    public void ManyPointsOfMixedContentDecodeTheSame(string tool, string arguments, bool twoMembers)
    {
        var content = GzipTestData.MixedContent(seed: 11, size: 6 << 20);
        var blob = GzipTestData.Compress(content, tool, arguments);
        if (twoMembers)
        {
            blob = [.. blob, .. GzipTestData.Compress(GzipTestData.MixedContent(seed: 12, size: 1 << 20), tool, arguments)];
        }

        var full = GzipTestData.BuildIndex(blob, new GzipIndexOptions { Span = 1 << 16, SpanDigests = true });
        var sparse = GzipTestData.BuildIndex(blob, new GzipIndexOptions { Span = 1 << 16, SpanDigests = true, SparseWindows = true });
        AssertSameDecoding(blob, full.Index, sparse.Index);
        Assert.True(sparse.Index.Length < full.Index.Length, $"sparse index {sparse.Index.Length} bytes, full {full.Index.Length}");

        // The span digests do not depend on the windows, and the reader checking every span's CRC against them accepts the sparse index.
        Assert.Equal(SpanRecords(full.Result), SpanRecords(sparse.Result));
        using var reader = GzipTestData.OpenReader(blob, sparse.Index, sparse.Result.Spans);
        var all = new byte[reader.Size];
        Assert.Equal(all.Length, reader.ReadAt(0, all));
        Assert.Equal(GzipTestData.GunzipReference(blob), all);
    }

    private static IEnumerable<(string, uint, bool)> SpanRecords(GzipIndexBuildResult result) =>
        result.Spans!.Spans.Select(s => (Convert.ToHexString(s.CompressedSha256), s.UncompressedCrc32, s.StartsMember));

    /// <summary>
    /// Same header (but for the sizes of the file), same entries (but for window positions and lengths), each
    /// sparse window a copy of the full one with some bytes zeroed, and every span decoded from the sparse
    /// window by raw zlib as overlaybd does equal to <c>gzip -dc</c>'s bytes.
    /// </summary>
    private static void AssertSameDecoding(byte[] blob, byte[] fullIndex, byte[] sparseIndex)
    {
        var full = GzipSeekIndex.Load(new MemoryBlockSource(fullIndex), SystemZlib.Instance);
        var sparse = GzipSeekIndex.Load(new MemoryBlockSource(sparseIndex), SystemZlib.Instance);
        var stable = (GzipIndexHeader h) => h with { IndexFileSize = 0, IndexStart = 0, IndexAreaLen = 0, Crc = 0 };
        Assert.Equal(stable(full.Header), stable(sparse.Header));
        Assert.Equal(full.Entries.Select(e => (e.DePos, e.EnPos, e.Bits)), sparse.Entries.Select(e => (e.DePos, e.EnPos, e.Bits)));

        var expected = GzipTestData.GunzipReference(blob);
        var fullWindow = new byte[GzipIndexHeader.WindowSize];
        var sparseWindow = new byte[GzipIndexHeader.WindowSize];
        var zeroed = 0;
        for (var i = 0; i < sparse.Entries.Count; i++)
        {
            full.ReadWindow(i, fullWindow);
            sparse.ReadWindow(i, sparseWindow);
            for (var b = 0; b < sparseWindow.Length; b++)
            {
                Assert.True(sparseWindow[b] == 0 || sparseWindow[b] == fullWindow[b], $"entry {i}: window byte {b} was changed, not zeroed");
                zeroed += sparseWindow[b] != fullWindow[b] ? 1 : 0;
            }

            var entry = sparse.Entries[i];
            var end = i + 1 < sparse.Entries.Count ? sparse.Entries[i + 1].DePos : expected.Length;
            var span = InflateAsOverlaybd(blob, entry, sparseWindow, checked((int)(end - entry.DePos)));
            Assert.Equal(end - entry.DePos, span.Length);
            Assert.True(expected.AsSpan((int)entry.DePos, span.Length).SequenceEqual(span), $"entry {i} at {entry.DePos} decodes differently");
        }

        Assert.True(zeroed > 0, "no window byte was dropped");
    }

    /// <summary>overlaybd's read path (§4.5): raw inflate, prime the pending bits, install the window, inflate on.</summary>
    private static byte[] InflateAsOverlaybd(byte[] blob, GzipIndexEntry entry, byte[] window, int length)
    {
        using var inflater = SystemZlib.Instance.Create(InflateWrapper.Raw);
        var input = blob.AsSpan((int)entry.EnPos);
        if (entry.Bits > 0)
        {
            inflater.Prime(entry.Bits, blob[entry.EnPos - 1] >> (8 - entry.Bits));
        }

        inflater.SetDictionary(window);
        var output = new byte[length];
        var produced = 0;
        while (produced < length)
        {
            var result = inflater.Inflate(input, output.AsSpan(produced), InflateFlush.NoFlush);
            produced += result.Produced;
            input = input[result.Consumed..];
            if (result.Status == InflateStatus.StreamEnd || (result.Consumed == 0 && result.Produced == 0))
            {
                break;
            }
        }

        return output[..produced];
    }
}

/// <summary>
/// The indexer given the blob in place (a mapped file in production) inflates it there and keeps no copies of its
/// input, yet writes the same index and span digests as from a stream, and never reads bytes it said it was done with.
/// </summary>
public sealed class CompressedViewTests
{
    [Theory]
    [InlineData("gzip", "-6 -n", false, true)]
    [InlineData("pigz", "-n -b 128", true, true)]
    [InlineData("gzip", "-1 -n", false, false)]
    public void AViewOfTheBlobGivesTheSameIndexAsTheStreamAlone(string tool, string arguments, bool twoMembers, bool sparse)
    {
        var blob = GzipTestData.Compress(GzipTestData.MixedContent(seed: 21, size: 5 << 20), tool, arguments);
        if (twoMembers)
        {
            blob = [.. blob, .. GzipTestData.Compress(GzipTestData.MixedContent(seed: 22, size: 3 << 20), tool, arguments)];
        }

        var options = new GzipIndexOptions { Span = 1 << 16, SpanDigests = true, SparseWindows = sparse };
        AssertSameAsStream(blob, options);
    }

    [Fact]
    public void OnOverlaybdsReferenceLayerTheViewGivesTheSameIndex() =>
        AssertSameAsStream(File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz")),
            new GzipIndexOptions { SpanDigests = true, SparseWindows = true });

    private static void AssertSameAsStream(byte[] blob, GzipIndexOptions options)
    {
        var (expected, expectedResult) = GzipTestData.BuildIndex(blob, options);
        var view = new ReleaseCheckingView(blob);
        using var output = new MemoryStream();
        var result = GzipIndexBuilder.Build(view, output, SystemZlib.Instance, SystemZlib.Instance, options);
        Assert.Equal(expected, output.ToArray());
        Assert.Equal(expectedResult.Spans!.ToBytes(), result.Spans!.ToBytes());
        Assert.True(view.Released > 0, "the indexer never let go of any input");
    }

    [Fact]
    public void AnIndexerDisposedMidwayHasStoppedReadingTheViewWhenDisposeReturns()
    {
        // An error part way (a hostile tar) disposes the indexer, then the caller unmaps the blob: no span hash or
        // window analysis may still be reading the view then (a read of an unmapped page kills the process).
        var blob = GzipTestData.Compress(GzipTestData.MixedContent(seed: 23, size: 8 << 20), "gzip", "-6 -n");
        var view = new ReleaseCheckingView(blob) { SlowWorkers = true };
        using var output = new MemoryStream();
        var indexing = new GzipIndexingStream(view, output, SystemZlib.Instance, SystemZlib.Instance,
            new GzipIndexOptions { Span = GzipIndexOptions.MinSpan, SpanDigests = true, SparseWindows = true });
        var buffer = new byte[1 << 20];
        for (var i = 0; i < 6; i++)
        {
            Assert.True(indexing.Read(buffer) > 0);
        }

        indexing.Dispose();
        view.Unmap();
        Thread.Sleep(200);
        Assert.Equal(0, view.ReadsAfterUnmap);
    }

    /// <summary>Fails a read of bytes the indexer had already released (a mapped view would have dropped them).</summary>
    private sealed class ReleaseCheckingView(byte[] bytes) : IByteView
    {
        private long _released;

        public long Released => Interlocked.Read(ref _released);

        public long Length => bytes.Length;

        private readonly int _owner = Environment.CurrentManagedThreadId;
        private int _unmapped;
        private int _readsAfterUnmap;

        /// <summary>Reads from other threads than the inflating one take a while, so some are running at any moment.</summary>
        public bool SlowWorkers { get; init; }

        public int ReadsAfterUnmap => Volatile.Read(ref _readsAfterUnmap);

        public void Unmap() => Volatile.Write(ref _unmapped, 1);

        public ReadOnlySpan<byte> Slice(long offset, int length)
        {
            if (SlowWorkers && Environment.CurrentManagedThreadId != _owner)
            {
                Thread.Sleep(20);
            }

            if (Volatile.Read(ref _unmapped) != 0)
            {
                Interlocked.Increment(ref _readsAfterUnmap);
            }

            Assert.True(offset >= Released, $"read at {offset} after the bytes before {Released} were released");
            return bytes.AsSpan((int)offset, length);
        }

        public void ReleaseBefore(long offset)
        {
            long seen;
            while ((seen = Interlocked.Read(ref _released)) < offset && Interlocked.CompareExchange(ref _released, offset, seen) != seen)
            {
            }
        }
    }
}
