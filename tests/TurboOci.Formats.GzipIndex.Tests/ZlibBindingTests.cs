using TurboOci.Interop.Zlib;
using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>The system zlib binding behind the Storage interfaces.</summary>
public sealed class ZlibBindingTests
{
    private static readonly byte[] s_text = "hello overlaybd, hello overlaybd, hello overlaybd\n"u8.ToArray();

    [Fact]
    public void CompressedBlocksDecompressAndAreCheckedStrictly()
    {
        var zlib = SystemZlib.Instance;
        var packed = new byte[zlib.CompressBound(s_text.Length)];
        var length = zlib.Compress(s_text, packed, 6);
        Assert.Equal(0x78, packed[0]); // zlib wrapper, not gzip or raw
        var output = new byte[100];
        Assert.Equal(s_text.Length, zlib.TryDecompress(packed.AsSpan(0, length), output));
        Assert.Equal(s_text, output[..s_text.Length]);

        Assert.Equal(-1, zlib.TryDecompress(packed.AsSpan(0, length - 1), output)); // truncated adler32
        var trailing = packed.AsSpan(0, length + 1).ToArray();
        Assert.Equal(-1, zlib.TryDecompress(trailing, output)); // bytes after the stream
        Assert.Equal(-1, zlib.TryDecompress(packed.AsSpan(0, length), new byte[10])); // does not fit
        var damaged = packed.AsSpan(0, length).ToArray();
        damaged[^1] ^= 1;
        Assert.Equal(-1, zlib.TryDecompress(damaged, output)); // adler32 mismatch
    }

    [Fact]
    public void GzipStreamsStopAtBlockBoundariesAndReportBits()
    {
        var gzip = GzipTestData.Compress(GzipTestData.MixedContent(3, 600_000), "gzip", "-6 -n");
        using var inflater = SystemZlib.Instance.Create(InflateWrapper.GzipOrZlib);
        var output = new byte[1 << 20];
        var first = inflater.Inflate(gzip, output, InflateFlush.Block);
        Assert.True(first.AtBlockBoundary);
        Assert.Equal((10, 0, 0), (first.Consumed, first.Produced, first.PendingBits)); // right after the 10-byte gzip header

        long consumed = first.Consumed, produced = 0, boundaries = 0;
        InflateResult result;
        do
        {
            result = inflater.Inflate(gzip.AsSpan((int)consumed), output.AsSpan((int)produced), InflateFlush.Block);
            consumed += result.Consumed;
            produced += result.Produced;
            boundaries += result.AtBlockBoundary ? 1 : 0;
        }
        while (result.Status != InflateStatus.StreamEnd);

        Assert.Equal(600_000, produced);
        Assert.Equal(gzip.Length, consumed);
        Assert.True(boundaries > 2, $"{boundaries} block boundaries");
    }

    [Fact]
    public void CorruptDataIsInvalidDataNotACrash()
    {
        using var inflater = SystemZlib.Instance.Create(InflateWrapper.Raw);
        Assert.Throws<InvalidDataException>(() => inflater.Inflate([0xff, 0xff, 0xff, 0xff], new byte[100], InflateFlush.NoFlush));
        inflater.Reset();
        var ok = inflater.Inflate([], new byte[10], InflateFlush.NoFlush);
        Assert.Equal(InflateStatus.NeedsMore, ok.Status);
        inflater.Dispose();
        inflater.Dispose();
        Assert.Throws<ObjectDisposedException>(() => inflater.Reset());
    }
}
