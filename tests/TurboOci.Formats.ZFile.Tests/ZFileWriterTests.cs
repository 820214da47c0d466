using TurboOci.Storage;

namespace TurboOci.Formats.ZFile.Tests;

public sealed class ZFileWriterTests
{
    [Theory]
    [InlineData(ZFileAlgorithm.Lz4, "input.lz4.zfile")]
    [InlineData(ZFileAlgorithm.Zstd, "input.zstd.zfile")]
    public void WriterGivesOverlaybdZFileToolsFileByteForByte(ZFileAlgorithm algorithm, string reference)
    {
        var expected = File.ReadAllBytes(Fixtures.ZFile(reference));
        var ours = Fixtures.Compress(Fixtures.Input, new ZFileWriterOptions { Algorithm = algorithm });
        AssertSameLayout(expected, ours);
        Assert.Equal(expected, ours); // K4os at L00_FAST and ZstdSharp at level 3 emit liblz4's and libzstd's bytes for this input
    }

    [Theory]
    [InlineData(ZFileAlgorithm.Lz4, "l1.commit.lz4")]
    [InlineData(ZFileAlgorithm.Zstd, "l1.commit.zstd")]
    public void OverwrittenHeaderMatchesOverlaybdCommitZ(ZFileAlgorithm algorithm, string reference)
    {
        var expected = File.ReadAllBytes(Fixtures.Lsmt(reference));
        var commit = File.ReadAllBytes(Fixtures.Lsmt("l1.commit"));
        var ours = Fixtures.Compress(commit, new ZFileWriterOptions { Algorithm = algorithm, OverwriteHeader = true });
        AssertSameLayout(expected, ours);
        Assert.Equal(expected, ours);
    }

    [Theory]
    [InlineData("overlaybd-apply", "overlaybd.commit.lz4")] // a real ext4 layer, 8.5 MB
    [InlineData("turbooci", "ext4.fs.meta")] // a warp layer
    [InlineData("lsmt", "l2.commit.lz4")]
    [InlineData("lsmt", "merged.l1l2.lz4")] // overlaybd-merge: header not overwritten
    public void RecompressingWhatOverlaybdWroteGivesItsBytes(string folder, string name)
    {
        var expected = File.ReadAllBytes(Fixtures.Reference(folder, name));
        using var reference = ZFileReader.Open(new MemoryBlockSource(expected));
        var options = new ZFileWriterOptions { Algorithm = reference.Algorithm, BlockSize = reference.BlockSize, OverwriteHeader = reference.Header.IsHeaderOverwrite };
        var ours = Fixtures.Compress(Fixtures.ReadAll(reference), options);
        AssertSameLayout(expected, ours);
        Assert.Equal(expected, ours);
    }

    [Fact]
    public void EmptyInputGivesOverlaybdsEmptyZFile()
    {
        var ours = Fixtures.Compress([], new ZFileWriterOptions());
        Assert.Equal(File.ReadAllBytes(Fixtures.ZFile("empty.lz4.zfile")), ours);
    }

    [Theory]
    [InlineData(ZFileAlgorithm.Lz4)]
    [InlineData(ZFileAlgorithm.Zstd)]
    public void SixtyFourKiBBlocksOfIncompressibleDataAreRefusedBecauseOverlaybdCouldNotReadThem(ZFileAlgorithm algorithm)
    {
        // overlaybd-zfile --bs 64 wrote input.lz4-bs64.zfile and then failed to read it back (block 8: 65794 bytes).
        using var output = new MemoryStream();
        var e = Assert.Throws<NotSupportedException>(() =>
            ZFileWriter.Write(new MemoryBlockSource(Fixtures.Input), output, new ZFileWriterOptions { Algorithm = algorithm, BlockSize = 65536 }));
        Assert.Contains("ZFile block 8 ", e.Message);
        Assert.Contains("32 KiB", e.Message);
    }

    [Fact]
    public void SixtyFourKiBBlocksOfCompressibleDataAreFineAndStayReadableByOverlaybd()
    {
        var data = Fixtures.MixedData(700_000, 11);
        var file = Fixtures.Compress(data, new ZFileWriterOptions { Algorithm = ZFileAlgorithm.Lz4, BlockSize = 65536 });
        using var zfile = ZFileReader.Open(new MemoryBlockSource(file));
        for (var i = 0; i < zfile.BlockCount; i++)
        {
            Assert.InRange(zfile.GetStoredBlockLength(i), 5, ZFileWriter.MaxStoredBlockLength);
        }

        Assert.Equal(data, Fixtures.ReadAll(zfile));
    }

    public static TheoryData<ZFileAlgorithm, int> Matrix()
    {
        var data = new TheoryData<ZFileAlgorithm, int>();
        foreach (var algorithm in new[] { ZFileAlgorithm.Lz4, ZFileAlgorithm.Zstd })
        {
            foreach (var kib in new[] { 4, 8, 16, 32, 64 })
            {
                data.Add(algorithm, kib * 1024);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public void RoundTripWithSequentialAndRandomReads(ZFileAlgorithm algorithm, int blockSize)
    {
        // As overlaybd's zfile test matrix: sequential reads, random 1..31-sector and 128 KiB reads, full decompression.
        var data = Fixtures.MixedData(3 * 1024 * 1024 + 777, blockSize);
        var file = Fixtures.Compress(data, new ZFileWriterOptions { Algorithm = algorithm, BlockSize = blockSize });
        using var zfile = ZFileReader.Open(new MemoryBlockSource(file));
        Assert.Equal(blockSize, zfile.BlockSize);
        Assert.Equal(data, Fixtures.ReadAll(zfile));
        var random = new Random(blockSize);
        var buffer = new byte[128 * 1024];
        for (var i = 0; i < 300; i++)
        {
            var length = i % 10 == 0 ? buffer.Length : random.Next(1, 32) * 512;
            var offset = random.Next(data.Length - length);
            Assert.Equal(length, zfile.ReadAt(offset, buffer.AsSpan(0, length)));
            Assert.True(buffer.AsSpan(0, length).SequenceEqual(data.AsSpan(offset, length)));
        }

        Assert.False(ZFileReader.IsZFile(new MemoryBlockSource(data)));
    }

    [Fact]
    public void StreamingWritesOfAnySizeGiveTheSameFile()
    {
        // As overlaybd's verify_builder: random-sized writes produce byte-identical files.
        var data = Fixtures.MixedData(2_500_000, 5);
        var options = new ZFileWriterOptions { Algorithm = ZFileAlgorithm.Zstd, BlockSize = 8192, OverwriteHeader = true };
        var expected = Fixtures.Compress(data, options);
        using var output = new MemoryStream();
        using (var stream = ZFileWriter.CreateStream(output, options, leaveOpen: true))
        {
            var random = new Random(1);
            for (var offset = 0; offset < data.Length;)
            {
                var count = Math.Min(data.Length - offset, random.Next(1, 200_000));
                stream.Write(data, offset, count);
                offset += count;
            }
        }

        Assert.Equal(expected, output.ToArray());

        using var fromStream = new MemoryStream();
        ZFileWriter.Write(new MemoryStream(data), fromStream, options);
        Assert.Equal(expected, fromStream.ToArray());
    }

    [Fact]
    public void HeaderOverwriteNeedsASeekableOutput()
    {
        Assert.Throws<ArgumentException>(() => ZFileWriter.Write(new MemoryBlockSource(new byte[10]), new NonSeekableStream(),
            new ZFileWriterOptions { OverwriteHeader = true }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2048)]
    [InlineData(12288)]
    [InlineData(128 * 1024)]
    public void BlockSizesOutsideOverlaybdsRangeAreRejected(int blockSize) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Fixtures.Compress([1, 2, 3], new ZFileWriterOptions { BlockSize = blockSize }));

    /// <summary>Header, jump table and trailer must match field for field even where codec bytes could differ.</summary>
    private static void AssertSameLayout(byte[] expected, byte[] actual)
    {
        using var reference = ZFileReader.Open(new MemoryBlockSource(expected));
        using var ours = ZFileReader.Open(new MemoryBlockSource(actual));
        Assert.True(ZFileHeader.TryRead(expected.AsSpan(0, 512), out var expectedHeader));
        Assert.True(ZFileHeader.TryRead(actual.AsSpan(0, 512), out var actualHeader));
        Assert.Equal(expectedHeader.Flags, actualHeader.Flags);
        Assert.Equal(expectedHeader with { Digest = 0, IndexCrc = 0, IndexOffset = 0 }, actualHeader with { Digest = 0, IndexCrc = 0, IndexOffset = 0 });
        Assert.True(ZFileHeader.TryRead(expected.AsSpan(expected.Length - 512), out var expectedTrailer));
        Assert.True(ZFileHeader.TryRead(actual.AsSpan(actual.Length - 512), out var actualTrailer));
        Assert.Equal(expectedTrailer.Flags, actualTrailer.Flags);
        Assert.Equal(expectedTrailer.OriginalFileSize, actualTrailer.OriginalFileSize);
        Assert.Equal(expectedTrailer.IndexSize, actualTrailer.IndexSize);
        Assert.Equal(expectedTrailer with { Digest = 0, IndexCrc = 0, IndexOffset = 0 }, actualTrailer with { Digest = 0, IndexCrc = 0, IndexOffset = 0 });
        Assert.Equal(expected.AsSpan(96, 416).ToArray(), actual.AsSpan(96, 416).ToArray()); // zero tail
        Assert.Equal(reference.BlockCount, ours.BlockCount);
    }

    private sealed class NonSeekableStream : MemoryStream
    {
        public override bool CanSeek => false;
    }
}
