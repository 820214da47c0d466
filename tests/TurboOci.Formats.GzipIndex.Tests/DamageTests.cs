using TurboOci.Interop.Zlib;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>Every kind of damage fails with a clear TurboOciFormatException; none returns wrong bytes.</summary>
public sealed class DamageTests
{
    private static readonly Layer s_layer = Layer.All["gzip6"].Value;

    private static GzipSeekIndex ParsedIndex => GzipSeekIndex.Load(new MemoryBlockSource(s_layer.Index), SystemZlib.Instance);

    [Fact]
    public void WrongBlobForTheIndex()
    {
        var other = Layer.All["pigz-b32"].Value;
        var e = Assert.Throws<TurboOciFormatException>(() => GzipTestData.OpenReader(other.Gzip, s_layer.Index));
        Assert.Contains("wrong or truncated blob", e.Message);
    }

    [Fact]
    public void WrongBlobOfTheSameSizeFailsOnRead()
    {
        // Same length, different content: the span's end does not land on the next entry's boundary.
        var other = GzipTestData.Compress(GzipTestData.MixedContent(99, 5_000_000), "gzip", "-6 -n");
        var blob = new byte[s_layer.Gzip.Length];
        other.AsSpan(0, Math.Min(other.Length, blob.Length)).CopyTo(blob);
        using var reader = GzipTestData.OpenReader(blob, s_layer.Index);
        AssertEveryReadFailsOrIsRight(reader, expected: s_layer.Expected, mustFailSomewhere: true);
    }

    [Fact]
    public void TruncatedBlob()
    {
        var e = Assert.Throws<TurboOciFormatException>(() => GzipTestData.OpenReader(s_layer.Gzip[..^100], s_layer.Index));
        Assert.Contains("gzip_file_size", e.Message);
    }

    [Fact]
    public void TruncatedBlobWhileBuilding()
    {
        var e = Assert.Throws<TurboOciFormatException>(() => GzipTestData.BuildIndex(s_layer.Gzip[..(s_layer.Gzip.Length / 2)]));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void FlippedBitInAWindow()
    {
        var index = (byte[])s_layer.Index.Clone();
        var number = ParsedIndex.Entries.Select((e, i) => (e, i)).First(x => x.i > 2 && x.e.WinLen > 4000).i;
        var entry = ParsedIndex.Entries[number];
        index[entry.WinPos + (entry.WinLen / 2)] ^= 0x10;
        using var reader = GzipTestData.OpenReader(s_layer.Gzip, index);
        var e = Assert.Throws<TurboOciFormatException>(() => reader.ReadAt(entry.DePos + 100, new byte[100]));
        Assert.Contains("window", e.Message);
    }

    [Fact]
    public void AnyFlippedWindowByteFailsOrStillGivesTheRightBytes()
    {
        // Some bits of a deflate stream (unused code lengths, padding) do not change its output.
        var entry = ParsedIndex.Entries[6];
        for (var at = 0; at < entry.WinLen; at += Math.Max(1, (int)entry.WinLen / 40))
        {
            var index = (byte[])s_layer.Index.Clone();
            index[entry.WinPos + at] ^= (byte)(1 << (at % 8));
            using var reader = GzipTestData.OpenReader(s_layer.Gzip, index);
            var buffer = new byte[(int)Math.Min(5000, ParsedIndex.SpanLength(6))];
            try
            {
                reader.ReadAt(entry.DePos, buffer);
            }
            catch (TurboOciFormatException)
            {
                continue;
            }

            Assert.Equal(s_layer.Expected.AsSpan((int)entry.DePos, buffer.Length).ToArray(), buffer);
        }
    }

    [Fact]
    public void FlippedBitInTheEntryArea()
    {
        var index = (byte[])s_layer.Index.Clone();
        index[ParsedIndex.Header.IndexStart + 20] ^= 0x01;
        var e = Assert.Throws<TurboOciFormatException>(() => GzipSeekIndex.Load(new MemoryBlockSource(index), SystemZlib.Instance));
        Assert.Contains("entry area", e.Message);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(GzipIndexHeader.SpanOffset)]
    [InlineData(GzipIndexHeader.UncompressFileSizeOffset + 1)]
    [InlineData(GzipIndexHeader.ReserveOffset + 100)]
    [InlineData(GzipIndexHeader.CrcOffset + 2)]
    public void FlippedBitInTheHeader(int offset)
    {
        var index = (byte[])s_layer.Index.Clone();
        index[offset] ^= 0x04;
        var e = Assert.Throws<TurboOciFormatException>(() => GzipSeekIndex.Load(new MemoryBlockSource(index), SystemZlib.Instance));
        Assert.Contains(offset == 3 ? "magic" : "CRC", e.Message);
    }

    [Fact]
    public void TruncatedIndex()
    {
        var e = Assert.Throws<TurboOciFormatException>(() => GzipSeekIndex.Load(new MemoryBlockSource(s_layer.Index[..^1]), SystemZlib.Instance));
        Assert.Contains("index_file_size", e.Message);
    }

    [Fact]
    public void FlippedBitInCompressedDataIsCaughtBySpanDigests()
    {
        var blob = (byte[])s_layer.Gzip.Clone();
        var span = 7;
        var (start, end) = ParsedIndex.CompressedRange(span);
        blob[(start + end) / 2] ^= 0x20;
        using var reader = GzipTestData.OpenReader(blob, s_layer.Index, s_layer.Digests);
        var e = Assert.Throws<TurboOciFormatException>(() => reader.ReadAt(ParsedIndex.Entries[span].DePos, new byte[10]));
        Assert.Contains("SHA-256", e.Message);
    }

    [Fact]
    public void FlippedBitInCompressedDataWithoutDigestsNeverGivesWrongBytesOnAFullRead()
    {
        // Without gzip.spans a random read cannot know; a whole-member read checks the trailer CRC.
        var blob = (byte[])s_layer.Gzip.Clone();
        var (start, end) = ParsedIndex.CompressedRange(7);
        blob[(start + end) / 2] ^= 0x20;
        using var reader = GzipTestData.OpenReader(blob, s_layer.Index, options: new GzipReaderOptions { CacheBytes = 0 });
        Assert.Throws<TurboOciFormatException>(() => reader.ReadAt(0, new byte[reader.Size]));
    }

    [Fact]
    public void FlippedBitInASpanDigest()
    {
        var spans = s_layer.Digests!.ToBytes();
        spans[GzipSpanDigests.HeaderSize + (3 * GzipSpanDigests.RecordSize) + 5] ^= 0x80;
        var e = Assert.Throws<TurboOciFormatException>(() => GzipSpanDigests.Read(spans));
        Assert.Contains("CRC", e.Message);
    }

    [Fact]
    public void SpanDigestsOfAnotherIndex()
    {
        var other = Layer.All["pigz-b32"].Value;
        var e = Assert.Throws<TurboOciFormatException>(() => GzipTestData.OpenReader(s_layer.Gzip, s_layer.Index, other.Digests));
        Assert.Contains("different index", e.Message);
    }

    [Fact]
    public void TamperedButConsistentSpanDigestIsCaughtOnRead()
    {
        // A digest rewritten with a valid file CRC (an attacker or a bug) still cannot pass wrong data.
        var digests = s_layer.Digests!;
        var spans = digests.Spans.ToArray();
        spans[2] = spans[2] with { CompressedSha256 = new byte[32] };
        var tampered = new GzipSpanDigests(digests.GzipFileSize, digests.UncompressedSize, digests.EntryArraySha256, spans);
        using var reader = GzipTestData.OpenReader(s_layer.Gzip, s_layer.Index, GzipSpanDigests.Read(tampered.ToBytes()));
        Assert.Throws<TurboOciFormatException>(() => reader.ReadAt(ParsedIndex.Entries[2].DePos, new byte[1]));
        var ok = new byte[100];
        reader.ReadAt(ParsedIndex.Entries[3].DePos, ok);
        Assert.Equal(s_layer.Expected.AsSpan((int)ParsedIndex.Entries[3].DePos, 100).ToArray(), ok);
    }

    [Fact]
    public void OverlaybdIndexAgainstAnotherLayerOfTheRightSize()
    {
        var meta = File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta"));
        var blob = new byte[307572];
        s_layer.Gzip.AsSpan(0, blob.Length).CopyTo(blob);
        using var reader = GzipTestData.OpenReader(blob, meta);
        Assert.Throws<TurboOciFormatException>(() => reader.ReadAt(0, new byte[reader.Size]));
    }

    private static void AssertEveryReadFailsOrIsRight(GzipIndexedSource reader, byte[] expected, bool mustFailSomewhere)
    {
        var failures = 0;
        var index = reader.Index;
        for (var i = 0; i < index.Entries.Count; i++)
        {
            var buffer = new byte[Math.Min(4096, index.SpanLength(i))];
            try
            {
                reader.ReadAt(index.Entries[i].DePos, buffer);
                Assert.True(buffer.AsSpan().SequenceEqual(expected.AsSpan((int)index.Entries[i].DePos, buffer.Length)), $"wrong bytes returned for span {i}");
            }
            catch (TurboOciFormatException)
            {
                failures++;
            }
        }

        Assert.True(!mustFailSomewhere || failures > 0);
    }
}
