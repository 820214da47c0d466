using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Formats.ZFile;

/// <summary>The compression algorithm byte of a ZFile (option area, offset 76).</summary>
public enum ZFileAlgorithm
{
    Lz4 = 1,
    Zstd = 2,
}

/// <summary>Flag bits of the ZFile header/trailer (u64 at offset 32). Only bits 0..5 mean anything.</summary>
[Flags]
public enum ZFileFlags : ulong
{
    None = 0,

    /// <summary>Set in the header, clear in the trailer.</summary>
    Header = 0x01,

    /// <summary>A data file; writers always set it and readers require it.</summary>
    DataFile = 0x02,

    /// <summary>Set in trailers.</summary>
    Sealed = 0x04,

    /// <summary>The header was rewritten at the end and carries the final index fields: the trailer may be ignored.</summary>
    HeaderOverwrite = 0x08,

    /// <summary>The digest field (and index_crc of the block used) are valid and checked.</summary>
    DigestEnabled = 0x10,

    /// <summary>"Index compressed": defined by overlaybd, never written, never honoured. We refuse it.</summary>
    IndexCompressed = 0x20,
}

/// <summary>Byte offsets of the fields of the 512-byte ZFile header/trailer block, in file order.</summary>
internal static class ZFileHeaderLayout
{
    public const int BlockSize = 512;
    public const int Magic0 = 0;
    public const int Magic1 = Magic0 + 8;
    public const int StructSize = Magic1 + 16;
    public const int Digest = StructSize + 4;
    public const int Flags = Digest + 4;
    public const int IndexOffset = Flags + 8;
    public const int IndexSize = IndexOffset + 8;
    public const int OriginalFileSize = IndexSize + 8;
    public const int IndexCrc = OriginalFileSize + 8;
    public const int Reserved0 = IndexCrc + 4;
    public const int BlockSizeField = Reserved0 + 4;
    public const int Algorithm = BlockSizeField + 4;
    public const int Level = Algorithm + 1;
    public const int UseDict = Level + 1;
    public const int Padding0 = UseDict + 1;
    public const int Reserved1 = Padding0 + 1;
    public const int DictSize = Reserved1 + 4;
    public const int Verify = DictSize + 4;

    /// <summary>sizeof(HeaderTrailer) in overlaybd: the value of the size field.</summary>
    public const int StructLength = Verify + 8;

    /// <summary>"ZFile\0\1\0".</summary>
    public static ReadOnlySpan<byte> Magic0Bytes => [0x5A, 0x46, 0x69, 0x6C, 0x65, 0x00, 0x01, 0x00];

    /// <summary>"tuji.yyf@Alibaba".</summary>
    public static ReadOnlySpan<byte> Magic1Bytes =>
        [0x74, 0x75, 0x6A, 0x69, 0x2E, 0x79, 0x79, 0x66, 0x40, 0x41, 0x6C, 0x69, 0x62, 0x61, 0x62, 0x61];
}

/// <summary>
/// One 512-byte ZFile header or trailer block. Old writers (overlaybd's 2021 base layer) left garbage
/// in reserved fields and high flag bits, so parsing keeps every field as stored and validation is the
/// reader's job; <see cref="Write"/> zeroes everything it does not set.
/// </summary>
public readonly record struct ZFileHeader
{
    public ZFileFlags Flags { get; init; }

    public uint Digest { get; init; }

    /// <summary>Byte offset of the jump table.</summary>
    public ulong IndexOffset { get; init; }

    /// <summary>Number of blocks (u32 jump-table entries).</summary>
    public ulong IndexSize { get; init; }

    public ulong OriginalFileSize { get; init; }

    /// <summary>Raw CRC-32C (seed 0) of the jump table as stored.</summary>
    public uint IndexCrc { get; init; }

    public uint BlockSize { get; init; }

    /// <summary>The raw algorithm byte: 1 = LZ4, 2 = zstd (0 = mini-LZO, unsupported).</summary>
    public byte Algorithm { get; init; }

    public byte Level { get; init; }

    public byte UseDict { get; init; }

    public uint DictSize { get; init; }

    /// <summary>1 when every stored block ends with a 4-byte CRC-32C.</summary>
    public byte Verify { get; init; }

    public bool IsHeader => (Flags & ZFileFlags.Header) != 0;

    public bool IsDataFile => (Flags & ZFileFlags.DataFile) != 0;

    public bool IsSealed => (Flags & ZFileFlags.Sealed) != 0;

    public bool IsHeaderOverwrite => (Flags & ZFileFlags.HeaderOverwrite) != 0;

    public bool IsDigestEnabled => (Flags & ZFileFlags.DigestEnabled) != 0;

    /// <summary>Whether the block starts with both ZFile magics.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> block) =>
        block.Length >= ZFileHeaderLayout.BlockSize
        && block[..8].SequenceEqual(ZFileHeaderLayout.Magic0Bytes)
        && block.Slice(ZFileHeaderLayout.Magic1, 16).SequenceEqual(ZFileHeaderLayout.Magic1Bytes);

    /// <summary>Parses a 512-byte block; false when it does not carry the ZFile magics.</summary>
    public static bool TryRead(ReadOnlySpan<byte> block, out ZFileHeader header)
    {
        if (!HasMagic(block))
        {
            header = default;
            return false;
        }

        header = new ZFileHeader
        {
            Digest = BinaryPrimitives.ReadUInt32LittleEndian(block[ZFileHeaderLayout.Digest..]),
            Flags = (ZFileFlags)BinaryPrimitives.ReadUInt64LittleEndian(block[ZFileHeaderLayout.Flags..]),
            IndexOffset = BinaryPrimitives.ReadUInt64LittleEndian(block[ZFileHeaderLayout.IndexOffset..]),
            IndexSize = BinaryPrimitives.ReadUInt64LittleEndian(block[ZFileHeaderLayout.IndexSize..]),
            OriginalFileSize = BinaryPrimitives.ReadUInt64LittleEndian(block[ZFileHeaderLayout.OriginalFileSize..]),
            IndexCrc = BinaryPrimitives.ReadUInt32LittleEndian(block[ZFileHeaderLayout.IndexCrc..]),
            BlockSize = BinaryPrimitives.ReadUInt32LittleEndian(block[ZFileHeaderLayout.BlockSizeField..]),
            Algorithm = block[ZFileHeaderLayout.Algorithm],
            Level = block[ZFileHeaderLayout.Level],
            UseDict = block[ZFileHeaderLayout.UseDict],
            DictSize = BinaryPrimitives.ReadUInt32LittleEndian(block[ZFileHeaderLayout.DictSize..]),
            Verify = block[ZFileHeaderLayout.Verify],
        };
        return true;
    }

    /// <summary>
    /// The digest overlaybd stores: raw CRC-32C, seed 0, over all 512 bytes of the block with the
    /// digest field read as zero (the reserved tail is covered too).
    /// </summary>
    public static uint ComputeDigest(ReadOnlySpan<byte> block)
    {
        var crc = Crc32C.Compute(0, block[..ZFileHeaderLayout.Digest]);
        crc = Crc32C.Compute(crc, [0, 0, 0, 0]);
        return Crc32C.Compute(crc, block[(ZFileHeaderLayout.Digest + 4)..ZFileHeaderLayout.BlockSize]);
    }

    /// <summary>
    /// Writes the block as overlaybd does: magics, size 96, fields, zero padding, and, when
    /// <see cref="ZFileFlags.DigestEnabled"/> is set, the digest computed over the result (the
    /// <see cref="Digest"/> property is then ignored).
    /// </summary>
    public void Write(Span<byte> block)
    {
        block = block[..ZFileHeaderLayout.BlockSize];
        block.Clear();
        ZFileHeaderLayout.Magic0Bytes.CopyTo(block);
        ZFileHeaderLayout.Magic1Bytes.CopyTo(block[ZFileHeaderLayout.Magic1..]);
        BinaryPrimitives.WriteUInt32LittleEndian(block[ZFileHeaderLayout.StructSize..], ZFileHeaderLayout.StructLength);
        BinaryPrimitives.WriteUInt64LittleEndian(block[ZFileHeaderLayout.Flags..], (ulong)Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(block[ZFileHeaderLayout.IndexOffset..], IndexOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(block[ZFileHeaderLayout.IndexSize..], IndexSize);
        BinaryPrimitives.WriteUInt64LittleEndian(block[ZFileHeaderLayout.OriginalFileSize..], OriginalFileSize);
        BinaryPrimitives.WriteUInt32LittleEndian(block[ZFileHeaderLayout.IndexCrc..], IndexCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(block[ZFileHeaderLayout.BlockSizeField..], BlockSize);
        block[ZFileHeaderLayout.Algorithm] = Algorithm;
        block[ZFileHeaderLayout.Level] = Level;
        block[ZFileHeaderLayout.UseDict] = UseDict;
        BinaryPrimitives.WriteUInt32LittleEndian(block[ZFileHeaderLayout.DictSize..], DictSize);
        block[ZFileHeaderLayout.Verify] = Verify;
        var digest = IsDigestEnabled ? ComputeDigest(block) : Digest;
        BinaryPrimitives.WriteUInt32LittleEndian(block[ZFileHeaderLayout.Digest..], digest);
    }
}
