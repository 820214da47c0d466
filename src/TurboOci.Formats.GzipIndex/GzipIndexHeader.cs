using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// The 333-byte packed header of overlaybd's gzip index (<c>gzip.meta</c>, magic <c>ddgzidx</c>),
/// little-endian, written last (overlaybd-formats.md §4.2). Field offsets follow the C struct.
/// </summary>
public readonly record struct GzipIndexHeader(
    byte MajorVersion,
    byte MinorVersion,
    byte DictCompressAlgo,
    sbyte DictCompressLevel,
    byte Flag,
    int Span,
    int Window,
    int IndexSize,
    long IndexNum,
    long GzipFileSize,
    long IndexFileSize,
    long UncompressFileSize,
    long IndexStart,
    long IndexAreaLen,
    uint Crc)
{
    public const string FormatName = "gzip index (ddgzidx)";
    public const int Size = 333;
    public const int EntrySize = 29;
    public const int WindowSize = 32768;

    /// <summary>Header bytes covered by the CRC: all but the crc field itself.</summary>
    public const int CrcCoveredLength = Size - 4;

    /// <summary>Windows and the entry area are zlib streams (the overlaybd default).</summary>
    public const byte AlgoZlib = 1;

    /// <summary>Windows and entries are stored raw.</summary>
    public const byte AlgoNone = 0;

    /// <summary>
    /// Our flag bit (overlaybd always writes 0 and never reads it): the blob has more than one gzip
    /// member and the index covers all of them; every member start has its own entry.
    /// </summary>
    public const byte FlagMultiMember = 1;

    public const int MagicOffset = 0;
    public const int MajorVersionOffset = 8;
    public const int MinorVersionOffset = 9;
    public const int DictCompressAlgoOffset = 10;
    public const int DictCompressLevelOffset = 11;
    public const int FlagOffset = 12;
    public const int SpanOffset = 13;
    public const int WindowOffset = 17;
    public const int IndexSizeOffset = 21;
    public const int IndexNumOffset = 25;
    public const int GzipFileSizeOffset = 33;
    public const int IndexFileSizeOffset = 41;
    public const int UncompressFileSizeOffset = 49;
    public const int ReserveOffset = 57;
    public const int ReserveLength = 256;
    public const int IndexStartOffset = 313;
    public const int IndexAreaLenOffset = 321;
    public const int CrcOffset = 329;

    /// <summary>"ddgzidx\0"; readers compare the first 7 bytes, as overlaybd does.</summary>
    public static ReadOnlySpan<byte> Magic => "ddgzidx\0"u8;

    /// <summary>Parses and checks a header: magic, version, entry size and CRC. Sizes are checked by <see cref="GzipSeekIndex"/>.</summary>
    public static GzipIndexHeader Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size)
        {
            TurboOciFormatException.Throw(FormatName, "header", 0, $"index is {bytes.Length} bytes, shorter than the {Size}-byte header");
        }

        if (!bytes[..7].SequenceEqual(Magic[..7]))
        {
            TurboOciFormatException.Throw(FormatName, "magic", 0, "not a gzip index (magic is not \"ddgzidx\")");
        }

        var header = new GzipIndexHeader(
            bytes[MajorVersionOffset],
            bytes[MinorVersionOffset],
            bytes[DictCompressAlgoOffset],
            (sbyte)bytes[DictCompressLevelOffset],
            bytes[FlagOffset],
            BinaryPrimitives.ReadInt32LittleEndian(bytes[SpanOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[WindowOffset..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[IndexSizeOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[IndexNumOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[GzipFileSizeOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[IndexFileSizeOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[UncompressFileSizeOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[IndexStartOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[IndexAreaLenOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[CrcOffset..]));

        var actual = Crc32C.Compute(0, bytes[..CrcCoveredLength]);
        if (actual != header.Crc)
        {
            TurboOciFormatException.Throw(FormatName, "header.crc", CrcOffset, $"header CRC-32C is 0x{actual:x8}, the header says 0x{header.Crc:x8}: damaged index");
        }

        if (header.MajorVersion != 1)
        {
            TurboOciFormatException.Throw(FormatName, "header.major_version", MajorVersionOffset, $"version {header.MajorVersion} is not supported (only 1)");
        }

        if (header.IndexSize != EntrySize)
        {
            TurboOciFormatException.Throw(FormatName, "header.index_size", IndexSizeOffset, $"entry size {header.IndexSize}, expected {EntrySize}");
        }

        if (header.DictCompressAlgo is not (AlgoNone or AlgoZlib))
        {
            TurboOciFormatException.Throw(FormatName, "header.dict_compress_algo", DictCompressAlgoOffset, $"unknown window compression {header.DictCompressAlgo}");
        }

        return header;
    }

    /// <summary>Writes the header with a freshly computed CRC (the <see cref="Crc"/> property is ignored); the reserve stays zero.</summary>
    public uint Write(Span<byte> destination)
    {
        var bytes = destination[..Size];
        bytes.Clear();
        Magic.CopyTo(bytes);
        bytes[MajorVersionOffset] = MajorVersion;
        bytes[MinorVersionOffset] = MinorVersion;
        bytes[DictCompressAlgoOffset] = DictCompressAlgo;
        bytes[DictCompressLevelOffset] = (byte)DictCompressLevel;
        bytes[FlagOffset] = Flag;
        BinaryPrimitives.WriteInt32LittleEndian(bytes[SpanOffset..], Span);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[WindowOffset..], Window);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[IndexSizeOffset..], IndexSize);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[IndexNumOffset..], IndexNum);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[GzipFileSizeOffset..], GzipFileSize);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[IndexFileSizeOffset..], IndexFileSize);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[UncompressFileSizeOffset..], UncompressFileSize);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[IndexStartOffset..], IndexStart);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[IndexAreaLenOffset..], IndexAreaLen);
        var crc = Crc32C.Compute(0, bytes[..CrcCoveredLength]);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[CrcOffset..], crc);
        return crc;
    }
}

/// <summary>
/// One access point (29 bytes packed): the uncompressed offset, the compressed byte offset after
/// which decoding resumes, where its 32 KiB window is stored, how many bits of the byte before
/// <see cref="EnPos"/> still belong to the next block, and the stored window length.
/// </summary>
public readonly record struct GzipIndexEntry(long DePos, long EnPos, long WinPos, byte Bits, uint WinLen)
{
    /// <summary>The first compressed byte a decoder must read: the byte holding the primed bits, if any.</summary>
    public long ReadStart => EnPos - (Bits > 0 ? 1 : 0);

    /// <summary>The exact bit position in the compressed blob where the next deflate block starts.</summary>
    public long BitPosition => (EnPos * 8) - Bits;

    public static GzipIndexEntry Read(ReadOnlySpan<byte> bytes) => new(
        BinaryPrimitives.ReadInt64LittleEndian(bytes),
        BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]),
        BinaryPrimitives.ReadInt64LittleEndian(bytes[16..]),
        bytes[24],
        BinaryPrimitives.ReadUInt32LittleEndian(bytes[25..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, DePos);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], EnPos);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], WinPos);
        destination[24] = Bits;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[25..], WinLen);
    }
}
