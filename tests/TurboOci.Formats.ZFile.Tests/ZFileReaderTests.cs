using TurboOci.Storage;

namespace TurboOci.Formats.ZFile.Tests;

/// <summary>Reading files written by overlaybd's own tools.</summary>
public sealed class ZFileReaderTests
{
    [Theory]
    [InlineData("input.lz4.zfile", ZFileAlgorithm.Lz4, 4096)]
    [InlineData("input.zstd.zfile", ZFileAlgorithm.Zstd, 4096)]
    [InlineData("input.lz4-bs64.zfile", ZFileAlgorithm.Lz4, 65536)] // overlaybd cannot read this one back; we can
    public void ReferenceZFileDecompressesToTheInput(string name, ZFileAlgorithm algorithm, int blockSize)
    {
        using var file = FileBlockSource.OpenRead(Fixtures.ZFile(name));
        Assert.True(ZFileReader.IsZFile(file));
        using var zfile = ZFileReader.Open(file);
        Assert.Equal(algorithm, zfile.Algorithm);
        Assert.Equal(blockSize, zfile.BlockSize);
        Assert.Equal(Fixtures.InputLength, zfile.Size);
        Assert.Equal(Fixtures.InputSha256, Fixtures.Sha256Of(zfile, chunk: 12345));
        Assert.Equal(Fixtures.InputSha256, Fixtures.Sha256Of(zfile, chunk: 1 << 20));
    }

    [Fact]
    public void OverlaybdZFileToolHeaderHoldsNoIndexFieldsAndTheTrailerDoes()
    {
        using var file = FileBlockSource.OpenRead(Fixtures.ZFile("input.lz4.zfile"));
        using var zfile = ZFileReader.Open(file);
        Assert.Equal((ZFileFlags)0x13, zfile.Header.Flags);
        Assert.Equal(0UL, zfile.Header.IndexOffset);
        Assert.Equal((ZFileFlags)0x16, zfile.Trailer!.Value.Flags);
        Assert.Equal(301_869UL, zfile.Effective.IndexOffset);
        Assert.Equal(257UL, zfile.Effective.IndexSize);
        Assert.Equal(0xc7a212fcu, zfile.Header.Digest);
        Assert.Equal(280, zfile.GetStoredBlockLength(0));
        Assert.Equal(512, zfile.GetStoredBlockOffset(0));
    }

    [Fact]
    public void EmptyZFileHasNoBlocks()
    {
        using var file = FileBlockSource.OpenRead(Fixtures.ZFile("empty.lz4.zfile"));
        using var zfile = ZFileReader.Open(file);
        Assert.Equal(0, zfile.Size);
        Assert.Equal(0, zfile.BlockCount);
        Assert.Equal(0, zfile.ReadAt(0, new byte[100]));
    }

    [Theory]
    [InlineData("l1.commit.lz4")]
    [InlineData("l1.commit.zstd")]
    public void CompressedCommitsDecompressToTheCommitWithTheOverwrittenHeader(string name)
    {
        using var file = FileBlockSource.OpenRead(Fixtures.Lsmt(name));
        using var zfile = ZFileReader.Open(file);
        Assert.Equal((ZFileFlags)0x1b, zfile.Header.Flags);
        Assert.Null(zfile.Trailer); // header-overwrite mode: the trailer is not needed
        Assert.Equal(File.ReadAllBytes(Fixtures.Lsmt("l1.commit")), Fixtures.ReadAll(zfile));
    }

    [Fact]
    public void StockBaseLayerWithGarbageLegacyHeaderDecodes()
    {
        using var file = new MemoryBlockSource(Fixtures.BaseLayer);
        using var zfile = ZFileReader.Open(file);
        Assert.False(zfile.Header.IsDigestEnabled);
        Assert.Equal(132_309, zfile.BlockCount);
        Assert.Equal(4_207_947UL, zfile.Effective.IndexOffset);
        Assert.Equal(Fixtures.BaseLayerPayloadLength, zfile.Size);
        Assert.Equal(Fixtures.BaseLayerPayloadSha256, Fixtures.Sha256Of(zfile, chunk: 4 << 20));
    }

    [Fact]
    public void TurboOciFsMetaIsAnOverwrittenLz4ZFileHoldingAnLsmtLayer()
    {
        using var file = FileBlockSource.OpenRead(Fixtures.Reference("turbooci", "ext4.fs.meta"));
        using var zfile = ZFileReader.Open(file);
        Assert.Equal((ZFileFlags)0x1b, zfile.Header.Flags);
        Assert.Equal(218_848, zfile.Size);
        var data = Fixtures.ReadAll(zfile);
        Assert.True(data.AsSpan(0, 4).SequenceEqual("LSMT"u8));
        Assert.True(data.AsSpan(data.Length - 4096, 4).SequenceEqual("LSMT"u8));
    }

    [Fact]
    public void RandomReadsOfAnyOffsetAndLengthMatchTheInput()
    {
        var input = Fixtures.Input;
        foreach (var name in new[] { "input.lz4.zfile", "input.zstd.zfile", "input.lz4-bs64.zfile" })
        {
            using var file = FileBlockSource.OpenRead(Fixtures.ZFile(name));
            using var zfile = ZFileReader.Open(file);
            var random = new Random(7);
            for (var i = 0; i < 400; i++)
            {
                var offset = random.NextInt64(input.Length + 10);
                var length = random.Next(4) switch { 0 => random.Next(1, 16), 1 => random.Next(1, 31) * 512, 2 => 128 * 1024, _ => random.Next(1, 300_000) };
                var buffer = new byte[length];
                var read = zfile.ReadAt(offset, buffer);
                var expected = (int)Math.Clamp(input.Length - offset, 0, length);
                Assert.Equal(expected, read);
                Assert.True(buffer.AsSpan(0, read).SequenceEqual(input.AsSpan((int)Math.Min(offset, input.Length), read)), $"{name}: read({offset}, {length})");
            }
        }
    }

    [Fact]
    public void ConcurrentReadersGetTheRightBytes()
    {
        var input = Fixtures.Input;
        using var file = FileBlockSource.OpenRead(Fixtures.ZFile("input.lz4.zfile"));
        using var zfile = ZFileReader.Open(file);
        Parallel.For(0, 8, worker =>
        {
            var random = new Random(worker);
            var buffer = new byte[9000];
            for (var i = 0; i < 500; i++)
            {
                var offset = random.Next(input.Length - buffer.Length);
                var length = random.Next(1, buffer.Length);
                Assert.Equal(length, zfile.ReadAt(offset, buffer.AsSpan(0, length)));
                Assert.True(buffer.AsSpan(0, length).SequenceEqual(input.AsSpan(offset, length)));
            }
        });
    }

    [Fact]
    public void SmallSequentialReadsDecompressEachBlockOnceAndStayCorrect()
    {
        var input = Fixtures.Input;
        using var file = FileBlockSource.OpenRead(Fixtures.ZFile("input.zstd.zfile"));
        var counting = new CountingSource(file);
        using var zfile = ZFileReader.Open(counting);
        var opened = counting.Reads;
        var buffer = new byte[512];
        var output = new byte[input.Length];
        for (var offset = 0; offset < input.Length; offset += buffer.Length)
        {
            var read = zfile.ReadAt(offset, buffer);
            buffer.AsSpan(0, read).CopyTo(output.AsSpan(offset));
        }

        Assert.Equal(input, output);
        // 257 blocks read in 512-byte pieces: one fetch per block thanks to the block cache, not one per piece (2051).
        Assert.Equal(zfile.BlockCount, counting.Reads - opened);
    }

    [Fact]
    public void OneThreadAndAllCoresDecodeTheSameBytesAndFailOnTheSameBlock()
    {
        var data = Fixtures.MixedData(5_000_000, 9);
        var file = Fixtures.Compress(data, new ZFileWriterOptions { Algorithm = ZFileAlgorithm.Zstd, BlockSize = 16384 });
        using var parallel = ZFileReader.Open(new MemoryBlockSource(file));
        parallel.DecodeParallelism = 4;
        using var inline = ZFileReader.Open(new MemoryBlockSource(file));
        inline.DecodeParallelism = 1;
        Assert.Equal(data, Fixtures.ReadAll(parallel));
        Assert.Equal(data, Fixtures.ReadAll(inline));

        // Damage two blocks of one large read: every thread count must report the lower one.
        file[(int)parallel.GetStoredBlockOffset(40) + 3] ^= 1;
        file[(int)parallel.GetStoredBlockOffset(200) + 3] ^= 1;
        foreach (var threads in new[] { 1, 2, 4 })
        {
            using var damaged = ZFileReader.Open(new MemoryBlockSource(file));
            damaged.DecodeParallelism = threads;
            var e = Assert.Throws<TurboOciFormatException>(() => damaged.ReadAt(0, new byte[4 << 20]));
            Assert.Equal("block[40].crc", e.Field);
        }
    }

    [Fact]
    public void DecompressedDataIsNotAZFile()
    {
        Assert.False(ZFileReader.IsZFile(new MemoryBlockSource(Fixtures.Input)));
        Assert.False(ZFileReader.IsZFile(new MemoryBlockSource(new byte[10])));
        var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(File.ReadAllBytes(Fixtures.Lsmt("l1.commit")))));
        Assert.Equal("header.magic", e.Field);
        Assert.Contains("LSMT", e.Message);
    }

    [Fact]
    public void TarWrappedZFileIsReportedAsTar()
    {
        var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile.tar")))));
        Assert.Contains("tar", e.Message);
    }

    [Fact]
    public void ReaderDoesNotOwnTheSource()
    {
        var file = FileBlockSource.OpenRead(Fixtures.ZFile("input.lz4.zfile"));
        ZFileReader.Open(file).Dispose();
        Assert.Equal(4, file.ReadAt(0, new byte[4])); // still open
        file.Dispose();
    }

    /// <summary>Counts positional reads, to show the cache works.</summary>
    private sealed class CountingSource(BlockSource inner) : BlockSource
    {
        private int _reads;

        public int Reads => _reads;

        public override long Size => inner.Size;

        public override int ReadAt(long offset, Span<byte> destination)
        {
            Interlocked.Increment(ref _reads);
            return inner.ReadAt(offset, destination);
        }
    }
}
