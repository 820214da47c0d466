using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Formats.ZFile.Tests;

/// <summary>
/// The damaged-file corpus: truncations at every section boundary, flipped bits in every structure,
/// impossible lengths and offsets. Each must end in a TurboOciFormatException that names the format,
/// the field and an offset inside the file, and never in a crash, a hang, a huge allocation or wrong data.
/// </summary>
public sealed class DamagedFileTests
{
    private static readonly byte[] s_lz4 = File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile"));
    private static readonly byte[] s_overwritten = File.ReadAllBytes(Fixtures.Lsmt("l1.commit.zstd"));

    public static TheoryData<string, long> Truncations()
    {
        var data = new TheoryData<string, long>();
        foreach (var (name, file) in new[] { ("lz4", s_lz4), ("overwritten", s_overwritten) })
        {
            Assert.True(ZFileHeader.TryRead(file.AsSpan(file.Length - 512), out var trailer));
            var indexOffset = (long)trailer.IndexOffset;
            var tableEnd = indexOffset + ((long)trailer.IndexSize * 4);
            foreach (var length in new[] { 0L, 1, 100, 511, 512, 513, 800, 1023, 1024, 4096, indexOffset - 1, indexOffset, indexOffset + 2, tableEnd - 1, tableEnd, tableEnd + 1, file.Length - 1 })
            {
                data.Add(name, length);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Truncations))]
    public void TruncatedFilesAreRefusedAtOpen(string name, long length)
    {
        var file = name == "lz4" ? s_lz4 : s_overwritten;
        var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(file.AsMemory(0, (int)length))));
        AssertGoodError(e, length);
    }

    [Fact]
    public void EveryBitFlipInTheHeaderIsCaught()
    {
        // The digest covers all 512 bytes (overlaybd's ht_check corrupts byte 400 and expects detection).
        for (var bit = 0; bit < 512 * 8; bit++)
        {
            var damaged = Flip(s_lz4, bit);
            if (bit == DigestEnabledBit)
            {
                AssertReadsTheInput(damaged);
                continue;
            }

            var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(damaged)));
            AssertGoodError(e, damaged.Length);
            Assert.StartsWith("header.", e.Field);
        }
    }

    [Fact]
    public void EveryBitFlipInTheTrailerIsCaught()
    {
        var trailerStart = (s_lz4.Length - 512) * 8;
        for (var bit = trailerStart; bit < s_lz4.Length * 8; bit++)
        {
            var damaged = Flip(s_lz4, bit);
            if (bit - trailerStart == DigestEnabledBit)
            {
                AssertReadsTheInput(damaged);
                continue;
            }

            var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(damaged)));
            AssertGoodError(e, damaged.Length);
            Assert.StartsWith("trailer.", e.Field);
        }
    }

    [Theory]
    [InlineData("lz4")]
    [InlineData("overwritten")]
    public void EveryBitFlipInTheJumpTableIsCaught(string name)
    {
        var file = name == "lz4" ? s_lz4 : s_overwritten;
        Assert.True(ZFileHeader.TryRead(file.AsSpan(file.Length - 512), out var trailer));
        var start = (int)trailer.IndexOffset * 8;
        var end = start + ((int)trailer.IndexSize * 32);
        for (var bit = start; bit < end; bit += 3)
        {
            var damaged = Flip(file, bit);
            var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(damaged)));
            AssertGoodError(e, damaged.Length);
            Assert.EndsWith(".index_crc", e.Field);
        }
    }

    [Fact]
    public void FlippedBitsInBlocksFailTheReadOfThatBlockOnly()
    {
        var input = Fixtures.Input;
        using var good = ZFileReader.Open(new MemoryBlockSource(s_lz4));
        for (var block = 0; block < good.BlockCount; block += 7)
        {
            var position = good.GetStoredBlockOffset(block) + ((block * 37) % good.GetStoredBlockLength(block));
            var damaged = Flip(s_lz4, (int)(position * 8) + (block % 8));
            using var zfile = ZFileReader.Open(new MemoryBlockSource(damaged));
            var buffer = new byte[4096];
            var e = Assert.Throws<TurboOciFormatException>(() => zfile.ReadAt((long)block * 4096, buffer));
            AssertGoodError(e, damaged.Length);
            Assert.Equal($"block[{block}].crc", e.Field);
            Assert.Equal(good.GetStoredBlockOffset(block + 1) - 4, e.Offset);
            Assert.Throws<TurboOciFormatException>(() => zfile.ReadAt(((long)block * 4096) + 100, buffer.AsSpan(0, 10))); // partial reads too
            var other = block == 0 ? 1 : block - 1;
            Assert.Equal(4096, zfile.ReadAt((long)other * 4096, buffer));
            Assert.True(buffer.AsSpan().SequenceEqual(input.AsSpan(other * 4096, 4096)));
        }
    }

    [Fact]
    public void CorruptBlocksWithValidCrcsAreDecodeErrorsNotWrongData()
    {
        // An attacker (or a bug) can recompute the CRC: the codec must still refuse or give exactly block_size bytes.
        var input = Fixtures.Input;
        using var good = ZFileReader.Open(new MemoryBlockSource(s_lz4));
        var random = new Random(3);
        var refused = 0;
        for (var attempt = 0; attempt < 300; attempt++)
        {
            var block = random.Next(good.BlockCount);
            var start = (int)good.GetStoredBlockOffset(block);
            var length = good.GetStoredBlockLength(block) - 4;
            var damaged = (byte[])s_lz4.Clone();
            damaged[start + random.Next(length)] = (byte)random.Next(256);
            BinaryPrimitives.WriteUInt32LittleEndian(damaged.AsSpan(start + length), Crc32C.Compute(ZFileReader.BlockCrcSeed, damaged.AsSpan(start, length)));
            using var zfile = ZFileReader.Open(new MemoryBlockSource(damaged));
            try
            {
                var buffer = new byte[4096];
                var read = zfile.ReadAt((long)block * 4096, buffer);
                Assert.Equal((int)Math.Min(4096, input.Length - ((long)block * 4096)), read);
            }
            catch (TurboOciFormatException e)
            {
                AssertGoodError(e, damaged.Length);
                Assert.Equal($"block[{block}]", e.Field);
                refused++;
            }
        }

        Assert.True(refused > 0);
    }

    public static TheoryData<string, string> ImpossibleFields() => new()
    {
        { "index_size_over_limit", "trailer.index_size" },
        { "index_size_not_matching_original_size", "trailer.index_size" },
        { "original_size_huge", "trailer.index_size" },
        { "index_offset_past_end", "trailer.index_offset" },
        { "index_offset_inside_header", "trailer.index_offset" },
        { "index_offset_huge", "trailer.index_offset" },
        { "block_size_zero", "trailer.block_size" },
        { "block_size_not_power_of_two", "trailer.block_size" },
        { "block_size_128k", "trailer.block_size" },
        { "algorithm_minilzo", "trailer.algo" },
        { "algorithm_unknown", "trailer.algo" },
        { "dictionary", "trailer.dict_size" },
        { "index_compressed", "trailer.flags" },
        { "verify_garbage", "trailer.verify" },
        { "jump_entry_zero", "jump_table[3]" },
        { "jump_entry_crc_only", "jump_table[3]" },
        { "jump_entry_huge", "jump_table[3]" },
        { "jump_entries_past_table", "jump_table[256]" },
    };

    [Theory]
    [MemberData(nameof(ImpossibleFields))]
    public void ImpossibleLengthsAndOffsetsWithValidDigestsAreRefused(string damage, string field)
    {
        // Valid digests and index CRC: only the field checks stand between these values and the reader.
        var file = (byte[])s_lz4.Clone();
        var trailerOffset = file.Length - 512;
        Assert.True(ZFileHeader.TryRead(file.AsSpan(trailerOffset), out var t));
        var tableOffset = (int)t.IndexOffset;
        void SetEntry(int index, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(tableOffset + (index * 4)), value);
        t = damage switch
        {
            "index_size_over_limit" => t with { IndexSize = 1_000_000_001 },
            "index_size_not_matching_original_size" => t with { IndexSize = t.IndexSize - 1 },
            "original_size_huge" => t with { OriginalFileSize = 1UL << 62 },
            "index_offset_past_end" => t with { IndexOffset = (ulong)file.Length },
            "index_offset_inside_header" => t with { IndexOffset = 100 },
            "index_offset_huge" => t with { IndexOffset = ulong.MaxValue - 3 },
            "block_size_zero" => t with { BlockSize = 0 },
            "block_size_not_power_of_two" => t with { BlockSize = 5000 },
            "block_size_128k" => t with { BlockSize = 128 * 1024 },
            "algorithm_minilzo" => t with { Algorithm = 0 },
            "algorithm_unknown" => t with { Algorithm = 9 },
            "dictionary" => t with { DictSize = 4096 },
            "index_compressed" => t with { Flags = t.Flags | ZFileFlags.IndexCompressed },
            "verify_garbage" => t with { Verify = 7 },
            _ => t,
        };
        switch (damage)
        {
            case "jump_entry_zero":
                SetEntry(3, 0);
                break;
            case "jump_entry_crc_only":
                SetEntry(3, 4);
                break;
            case "jump_entry_huge":
                SetEntry(3, 0x7FFF_FFFF);
                break;
            case "jump_entries_past_table":
                SetEntry(256, 9000); // the last block claims to run into the jump table
                break;
        }

        t = t with { IndexCrc = Crc32C.Compute(0, file.AsSpan(tableOffset, 257 * 4)) };
        t.Write(file.AsSpan(trailerOffset, 512));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(file)));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 << 20, "refusing a damaged file must not allocate much");
        AssertGoodError(e, file.Length);
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void OverwrittenHeaderWithImpossibleIndexIsRefused()
    {
        var file = (byte[])s_overwritten.Clone();
        Assert.True(ZFileHeader.TryRead(file, out var header));
        (header with { IndexOffset = (ulong)file.Length - 10 }).Write(file.AsSpan(0, 512));
        var e = Assert.Throws<TurboOciFormatException>(() => ZFileReader.Open(new MemoryBlockSource(file)));
        Assert.Equal("header.index_offset", e.Field);
        Assert.Equal(ZFileHeaderLayout.IndexOffset, e.Offset);
    }

    [Fact]
    public void LegacyFilesWithoutDigestStillHaveTheirBlockCrcsChecked()
    {
        var file = (byte[])Fixtures.BaseLayer.Clone();
        using var good = ZFileReader.Open(new MemoryBlockSource(file));
        var block = 1000;
        file[good.GetStoredBlockOffset(block) + 2] ^= 0x40;
        using var zfile = ZFileReader.Open(new MemoryBlockSource(file));
        var e = Assert.Throws<TurboOciFormatException>(() => zfile.ReadAt(block * 4096L, new byte[4096]));
        Assert.Equal($"block[{block}].crc", e.Field);
        using var unchecked_ = ZFileReader.Open(new MemoryBlockSource(file), verifyChecksums: false);
        Assert.False(unchecked_.ChecksBlockChecksums);
        Assert.Throws<TurboOciFormatException>(() => unchecked_.VerifyAllBlocks()); // verify always checks
    }

    [Fact]
    public void ErrorOffsetsInsideATarEnvelopeAreAbsolute()
    {
        var blob = File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile.tar"));
        blob[TarEnvelope.PaxPayloadOffset + 600] ^= 1; // inside block 0 (stored at 512..792 of the ZFile)
        using var source = new MemoryBlockSource(blob);
        Assert.True(TarEnvelope.TryOpen(source, out var payload));
        using var zfile = ZFileReader.Open(payload);
        var e = Assert.Throws<TurboOciFormatException>(() => zfile.ReadAt(0, new byte[8192]));
        Assert.Equal("block[0].crc", e.Field);
        Assert.Equal(TarEnvelope.PaxPayloadOffset + zfile.GetStoredBlockOffset(1) - 4, e.Offset);
    }

    public static TheoryData<string> TarDamages() => new() { "truncated_payload", "truncated_headers", "pax_record_garbage", "pax_size_garbage", "pax_data_two_blocks", "member_header_broken", "member_is_directory" };

    [Theory]
    [MemberData(nameof(TarDamages))]
    public void DamagedTarEnvelopesAreRefusedClearly(string damage)
    {
        var blob = File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile.tar"));
        switch (damage)
        {
            case "truncated_payload":
                blob = blob[..100_000];
                break;
            case "truncated_headers":
                blob = blob[..1200];
                break;
            case "pax_record_garbage":
                "99 size"u8.CopyTo(blob.AsSpan(512));
                break;
            case "pax_size_garbage":
                "15 size=30x409\n"u8.CopyTo(blob.AsSpan(512));
                break;
            case "pax_data_two_blocks":
                SetOctalSize(blob, 0, 600);
                break;
            case "member_header_broken":
                blob[1024 + 257] = (byte)'X';
                break;
            case "member_is_directory":
                blob[1024 + 156] = (byte)'5';
                FixChecksum(blob, 1024);
                break;
        }

        var e = Assert.Throws<TurboOciFormatException>(() => TarEnvelope.TryOpen(new MemoryBlockSource(blob), out _));
        Assert.Equal(TarEnvelope.FormatName, e.Format);
        Assert.InRange(e.Offset, 0, 1536);
        Assert.False(string.IsNullOrEmpty(e.Field));
    }

    private static void SetOctalSize(byte[] blob, int header, int value)
    {
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(value, 8).PadLeft(11) + " ", blob.AsSpan(header + 124, 12));
        FixChecksum(blob, header);
    }

    private static void FixChecksum(byte[] blob, int header)
    {
        blob.AsSpan(header + 148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in blob.AsSpan(header, 512))
        {
            sum += b;
        }

        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6) + " \0", blob.AsSpan(header + 148, 8));
    }

    /// <summary>
    /// Flags bit 4 says whether the digest exists at all. Legacy writers leave it clear with garbage in the
    /// digest field (the stock base layer), so a flip of that one bit is undetectable by design: the file
    /// must then still read back exactly, never as wrong data.
    /// </summary>
    private const int DigestEnabledBit = (ZFileHeaderLayout.Flags * 8) + 4;

    private static void AssertReadsTheInput(byte[] file)
    {
        using var zfile = ZFileReader.Open(new MemoryBlockSource(file));
        Assert.Equal(Fixtures.InputSha256, Fixtures.Sha256Of(zfile));
    }

    private static byte[] Flip(byte[] file, int bit)
    {
        var copy = (byte[])file.Clone();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    private static void AssertGoodError(TurboOciFormatException e, long fileLength)
    {
        Assert.Equal(ZFileReader.FormatName, e.Format);
        Assert.False(string.IsNullOrWhiteSpace(e.Field));
        Assert.InRange(e.Offset, 0, fileLength);
        Assert.Contains(e.Field, e.Message);
    }
}
