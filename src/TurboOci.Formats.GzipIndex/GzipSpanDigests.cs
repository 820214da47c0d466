using System.Buffers.Binary;
using System.Security.Cryptography;
using TurboOci.Storage;

namespace TurboOci.Formats.GzipIndex;

/// <summary>What the spans file records about one span (the stretch from one index entry to the next).</summary>
/// <param name="CompressedSha256">SHA-256 of the span's compressed bytes: [entry.ReadStart, next entry's en_pos), or to the blob's end for the last span.</param>
/// <param name="UncompressedCrc32">CRC-32 (gzip's) of the span's uncompressed bytes.</param>
/// <param name="StartsMember">The span's entry is the first point of a gzip member.</param>
public readonly record struct GzipSpanRecord(byte[] CompressedSha256, uint UncompressedCrc32, bool StartsMember);

/// <summary>
/// <c>gzip.spans</c>: our own side file beside <c>gzip.meta</c> (which stays overlaybd's, byte for
/// byte), so a node can verify every compressed range it fetches from a registry, mirror or peer
/// before decompressing it, and every span it decompresses. Little-endian:
/// <code>
///  0   8  magic "TOGZSPAN"
///  8   4  u32 version = 1
/// 12   4  u32 flags = 0
/// 16   8  i64 span_count          (= the index's index_num)
/// 24   8  i64 gzip_file_size      (= the index's)
/// 32   8  i64 uncompress_file_size (= the index's)
/// 40  32  SHA-256 of the index's uncompressed entry array (index_num × 29 bytes): binds the pair
/// 72  40×n per span: SHA-256[32] of the compressed range, u32 CRC-32 of the uncompressed bytes,
///          u32 flags (bit 0: the span starts a gzip member)
/// end −4  u32 CRC-32C (raw, seed 0, as overlaybd) of all bytes before it
/// </code>
/// </summary>
public sealed class GzipSpanDigests
{
    public const string FormatName = "gzip span digests (gzip.spans)";
    public const int HeaderSize = 72;
    public const int RecordSize = 40;
    public const uint CurrentVersion = 1;
    public const uint RecordFlagStartsMember = 1;

    private const int VersionOffset = 8;
    private const int FlagsOffset = 12;
    private const int CountOffset = 16;
    private const int GzipSizeOffset = 24;
    private const int UncompressedSizeOffset = 32;
    private const int EntriesShaOffset = 40;

    public GzipSpanDigests(long gzipFileSize, long uncompressedSize, byte[] entryArraySha256, IReadOnlyList<GzipSpanRecord> spans)
    {
        GzipFileSize = gzipFileSize;
        UncompressedSize = uncompressedSize;
        EntryArraySha256 = entryArraySha256;
        Spans = spans;
    }

    public static ReadOnlySpan<byte> Magic => "TOGZSPAN"u8;

    public long GzipFileSize { get; }

    public long UncompressedSize { get; }

    public byte[] EntryArraySha256 { get; }

    public IReadOnlyList<GzipSpanRecord> Spans { get; }

    public static long FileSize(long spanCount) => checked(HeaderSize + (spanCount * RecordSize) + 4);

    /// <summary>Parses a spans file, checking its CRC before trusting any field.</summary>
    public static GzipSpanDigests Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize + 4)
        {
            TurboOciFormatException.Throw(FormatName, "header", 0, $"file is {bytes.Length} bytes, shorter than an empty spans file");
        }

        if (!bytes[..8].SequenceEqual(Magic))
        {
            TurboOciFormatException.Throw(FormatName, "magic", 0, "not a spans file (magic is not \"TOGZSPAN\")");
        }

        var crcOffset = bytes.Length - 4;
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes[crcOffset..]);
        var actual = Crc32C.Compute(0, bytes[..crcOffset]);
        if (stored != actual)
        {
            TurboOciFormatException.Throw(FormatName, "crc", crcOffset, $"CRC-32C is 0x{actual:x8}, the file says 0x{stored:x8}: damaged spans file");
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(bytes[VersionOffset..]);
        if (version != CurrentVersion)
        {
            TurboOciFormatException.Throw(FormatName, "version", VersionOffset, $"version {version} is not supported (only {CurrentVersion})");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes[FlagsOffset..]) != 0)
        {
            TurboOciFormatException.Throw(FormatName, "flags", FlagsOffset, "unknown flags");
        }

        var count = BinaryPrimitives.ReadInt64LittleEndian(bytes[CountOffset..]);
        if (count < 1 || count > GzipSeekIndex.MaxEntries || FileSize(count) != bytes.Length)
        {
            TurboOciFormatException.Throw(FormatName, "span_count", CountOffset, $"{count} spans do not fit a {bytes.Length}-byte file");
        }

        var records = new GzipSpanRecord[count];
        for (var i = 0; i < records.Length; i++)
        {
            var record = bytes.Slice(HeaderSize + (i * RecordSize), RecordSize);
            var flags = BinaryPrimitives.ReadUInt32LittleEndian(record[36..]);
            if ((flags & ~RecordFlagStartsMember) != 0 || (i == 0 && flags == 0))
            {
                TurboOciFormatException.Throw(FormatName, $"span[{i}].flags", HeaderSize + (i * RecordSize) + 36, $"flags 0x{flags:x} are not valid here");
            }

            records[i] = new GzipSpanRecord(record[..32].ToArray(), BinaryPrimitives.ReadUInt32LittleEndian(record[32..]), flags != 0);
        }

        return new GzipSpanDigests(
            BinaryPrimitives.ReadInt64LittleEndian(bytes[GzipSizeOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[UncompressedSizeOffset..]),
            bytes.Slice(EntriesShaOffset, 32).ToArray(),
            records);
    }

    /// <summary>Reads a spans file from a source, bounding its size first.</summary>
    public static GzipSpanDigests Read(BlockSource source)
    {
        if (source.Size > FileSize(GzipSeekIndex.MaxEntries))
        {
            TurboOciFormatException.Throw(FormatName, "size", 0, $"a {source.Size}-byte spans file is larger than any valid one");
        }

        var bytes = new byte[source.Size];
        source.ReadExactlyAt(0, bytes);
        return Read(bytes);
    }

    public byte[] ToBytes()
    {
        var bytes = new byte[FileSize(Spans.Count)];
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(VersionOffset), CurrentVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(FlagsOffset), 0);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(CountOffset), Spans.Count);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(GzipSizeOffset), GzipFileSize);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(UncompressedSizeOffset), UncompressedSize);
        EntryArraySha256.CopyTo(bytes.AsSpan(EntriesShaOffset));
        for (var i = 0; i < Spans.Count; i++)
        {
            var record = bytes.AsSpan(HeaderSize + (i * RecordSize), RecordSize);
            Spans[i].CompressedSha256.CopyTo(record);
            BinaryPrimitives.WriteUInt32LittleEndian(record[32..], Spans[i].UncompressedCrc32);
            BinaryPrimitives.WriteUInt32LittleEndian(record[36..], Spans[i].StartsMember ? RecordFlagStartsMember : 0);
        }

        var crcOffset = bytes.Length - 4;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(crcOffset), Crc32C.Compute(0, bytes.AsSpan(0, crcOffset)));
        return bytes;
    }

    /// <summary>Throws unless these digests were made for <paramref name="index"/>.</summary>
    public void CheckMatches(GzipSeekIndex index)
    {
        if (Spans.Count != index.Entries.Count || GzipFileSize != index.CompressedSize || UncompressedSize != index.UncompressedSize
            || !SHA256.HashData(index.EntryArray.Span).AsSpan().SequenceEqual(EntryArraySha256))
        {
            TurboOciFormatException.Throw(FormatName, "header", 0,
                "the spans file was made for a different index (span count, sizes or entry digest differ)");
        }
    }
}
