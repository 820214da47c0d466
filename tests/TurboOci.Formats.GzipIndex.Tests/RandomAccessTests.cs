using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>Random (offset, length) reads through our index equal the same range of <c>gzip -dc</c> output.</summary>
public sealed class RandomAccessTests
{
    public static TheoryData<string> Layers() => new(Layer.All.Keys);

    [Theory]
    [MemberData(nameof(Layers))]
    public void RandomReadsMatchGunzip(string name)
    {
        var layer = Layer.All[name].Value;
        foreach (var cache in new[] { 0L, 8L << 20 })
        {
            using var reader = GzipTestData.OpenReader(layer.Gzip, layer.Index, layer.Digests, new GzipReaderOptions { CacheBytes = cache });
            Assert.Equal(layer.Expected.Length, reader.Size);
            var random = new Random(name.GetHashCode(StringComparison.Ordinal) ^ (int)cache);
            for (var n = 0; n < 80; n++)
            {
                CheckRandomRead(reader, layer.Expected, random);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void EightThreadsAtOnce(string name)
    {
        var layer = Layer.All[name].Value;
        using var reader = GzipTestData.OpenReader(layer.Gzip, layer.Index, null, new GzipReaderOptions { CacheBytes = 2L << 20 });
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var random = new Random(t * 7919);
            for (var n = 0; n < 25; n++)
            {
                CheckRandomRead(reader, layer.Expected, random);
            }
        });
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void WholeSequentialReadInLargeChunks(string name)
    {
        var layer = Layer.All[name].Value;
        using var reader = GzipTestData.OpenReader(layer.Gzip, layer.Index, null, new GzipReaderOptions { CacheBytes = 0, MaxParallelism = 4 });
        var all = new byte[reader.Size];
        for (long pos = 0; pos < all.Length; pos += 3 << 20)
        {
            var want = (int)Math.Min(3 << 20, all.Length - pos);
            Assert.Equal(want, reader.ReadAt(pos, all.AsSpan((int)pos, want)));
        }

        Assert.Equal(layer.Expected, all);
    }

    [Fact]
    public void SpanDigestsDescribeEverySpan()
    {
        var layer = Layer.All["pigz-b32"].Value;
        var index = GzipSeekIndex.Load(new MemoryBlockSource(layer.Index), SystemZlib.Instance);
        Assert.NotNull(layer.Digests);
        Assert.Equal(index.Entries.Count, layer.Digests.Spans.Count);
        Assert.True(index.Entries.Count > 20, $"only {index.Entries.Count} spans");
        var roundTrip = GzipSpanDigests.Read(layer.Digests.ToBytes());
        Assert.Equal(layer.Digests.ToBytes(), roundTrip.ToBytes());
        for (var i = 0; i < index.Entries.Count; i++)
        {
            var (start, end) = index.CompressedRange(i);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(layer.Gzip.AsSpan((int)start, (int)(end - start))), layer.Digests.Spans[i].CompressedSha256);
            var de = index.Entries[i].DePos;
            Assert.Equal(System.IO.Hashing.Crc32.HashToUInt32(layer.Expected.AsSpan((int)de, (int)index.SpanLength(i))), layer.Digests.Spans[i].UncompressedCrc32);
        }
    }

    [Fact]
    public void MultiMemberIsIndexedWholeWithAnEntryAtEveryMemberStart()
    {
        var layer = Layer.All["multi-member"].Value;
        var index = GzipSeekIndex.Load(new MemoryBlockSource(layer.Index), SystemZlib.Instance);
        Assert.Equal(GzipIndexHeader.FlagMultiMember, index.Header.Flag);
        Assert.Equal(layer.Expected.Length, index.UncompressedSize);
        Assert.Equal(4, layer.Result.Members);
        var starts = layer.Digests!.Spans.Select((s, i) => (s, i)).Where(x => x.s.StartsMember).Select(x => index.Entries[x.i]).ToList();
        Assert.Equal(4, starts.Count);
        Assert.All(starts, e => Assert.Equal(0, e.Bits));
        Assert.Equal([0L, Layer.MemberSizes[0], Layer.MemberSizes[0], Layer.MemberSizes[0] + Layer.MemberSizes[2]], starts.Select(e => e.DePos));
    }

    [Fact]
    public void ZeroRunsMakeHugeSpansThatStreamInsteadOfMaterializing()
    {
        var layer = Layer.All["zeros-gzip9"].Value;
        var index = GzipSeekIndex.Load(new MemoryBlockSource(layer.Index), SystemZlib.Instance);
        var longest = Enumerable.Range(0, index.Entries.Count).Max(index.SpanLength);
        Assert.True(longest > 1 << 20, $"longest span {longest}");
        using var reader = GzipTestData.OpenReader(layer.Gzip, layer.Index, layer.Digests, new GzipReaderOptions { MaxMaterializedSpan = 1 << 18 });
        var random = new Random(5);
        for (var n = 0; n < 40; n++)
        {
            CheckRandomRead(reader, layer.Expected, random);
        }
    }

    private static void CheckRandomRead(GzipIndexedSource reader, byte[] expected, Random random)
    {
        var offset = random.NextInt64(-10, expected.Length + 10);
        var length = random.Next(4) switch
        {
            0 => random.Next(0, 16),
            1 => 4096,
            2 => random.Next(1, 300_000),
            _ => random.Next(1, 2_500_000),
        };
        var buffer = new byte[length];
        if (offset < 0)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => reader.ReadAt(offset, buffer));
            return;
        }

        var read = reader.ReadAt(offset, buffer);
        var want = (int)Math.Clamp(expected.Length - offset, 0, length);
        Assert.Equal(want, read);
        Assert.True(expected.AsSpan((int)Math.Min(offset, expected.Length), want).SequenceEqual(buffer.AsSpan(0, want)), $"bytes differ at offset {offset} length {length}");
    }
}

/// <summary>The synthetic layers, built once per test run by real gzip/pigz; indexes with 64 KiB spans so small data has many.</summary>
internal sealed record Layer(byte[] Gzip, byte[] Expected, byte[] Index, GzipSpanDigests? Digests, GzipIndexBuildResult Result)
{
    public static readonly int[] MemberSizes = [1_500_000, 0, 900_000, 1_200_000];

    public static readonly Dictionary<string, Lazy<Layer>> All = new()
    {
        ["gzip6"] = new(() => Make(GzipTestData.Compress(GzipTestData.MixedContent(1, 5_000_000), "gzip", "-6 -n"))),
        ["pigz-b32"] = new(() => Make(GzipTestData.Compress(GzipTestData.MixedContent(2, 5_000_000), "pigz", "-n -b 32 -p 2"))),
        ["incompressible-gzip1"] = new(() => Make(GzipTestData.Compress(Random(3, 3_000_000), "gzip", "-1 -n"))),
        ["zeros-gzip9"] = new(() => Make(GzipTestData.Compress(ZerosWithIslands(), "gzip", "-9 -n"))),
        ["multi-member"] = new(() => Make(MultiMember())),
    };

    private static Layer Make(byte[] gzip)
    {
        var (index, result) = GzipTestData.BuildIndex(gzip, new GzipIndexOptions { Span = 65536, SpanDigests = true });
        return new Layer(gzip, GzipTestData.GunzipReference(gzip), index, result.Spans, result);
    }

    private static byte[] Random(int seed, int size)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static byte[] ZerosWithIslands()
    {
        var data = new byte[4_000_000];
        for (var i = 0; i < data.Length; i += 1_500_000)
        {
            new Random(i).NextBytes(data.AsSpan(i, 3000));
        }

        return data;
    }

    private static byte[] MultiMember()
    {
        using var all = new MemoryStream();
        for (var m = 0; m < MemberSizes.Length; m++)
        {
            all.Write(GzipTestData.Compress(GzipTestData.MixedContent(10 + m, MemberSizes[m]), m % 2 == 0 ? "gzip" : "pigz", "-n"));
        }

        return all.ToArray();
    }
}

/// <summary>Bytes after the last member are ignored, as gzip -d ignores them, but still counted in the blob size.</summary>
public sealed class TrailingBytesTests
{
    [Fact]
    public void TrailingZerosAndGarbageAreIgnored()
    {
        var content = GzipTestData.MixedContent(8, 300_000);
        var gzip = GzipTestData.Compress(content, "gzip", "-n");
        foreach (var tail in new[] { new byte[1000], "not gzip at all"u8.ToArray(), [0x1f] })
        {
            var blob = gzip.Concat(tail).ToArray();
            var (index, result) = GzipTestData.BuildIndex(blob);
            Assert.Equal(tail.Length, result.TrailingBytes);
            Assert.Equal(blob.Length, result.Header.GzipFileSize);
            using var reader = GzipTestData.OpenReader(blob, index);
            var all = new byte[reader.Size];
            reader.ReadAt(0, all);
            Assert.Equal(content, all);
        }
    }
}
