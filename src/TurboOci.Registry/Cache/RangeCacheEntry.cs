using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Registry.Cache;

/// <summary>
/// The 32-byte header in front of every cached range on disk. It names the range it holds and carries a
/// CRC-32C of the data and of itself, so a torn write, a truncated file or a flipped bit is caught on read.
/// </summary>
/// <remarks>
/// Layout (little-endian): magic "TOCR" u32 | version u16 | reserved u16 | offset u64 | length u32 |
/// dataCrc u32 | reserved u32 | headerCrc u32 (CRC-32C of bytes 0..28).
/// </remarks>
public readonly record struct RangeCacheEntryHeader(long Offset, int Length, uint DataCrc)
{
    public const int Size = 32;
    public const uint Magic = 0x52434F54; // "TOCR" read little-endian
    public const ushort Version = 1;
    private const int HeaderCrcOffset = 28;
    private const string Format = "range cache entry";

    public static RangeCacheEntryHeader For(long offset, ReadOnlySpan<byte> data) =>
        new(offset, data.Length, Crc32C.Compute(0, data));

    public void Write(Span<byte> destination)
    {
        destination = destination[..Size];
        destination.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Offset);
        BinaryPrimitives.WriteInt32LittleEndian(destination[16..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], DataCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HeaderCrcOffset..], Crc32C.Compute(0, destination[..HeaderCrcOffset]));
    }

    /// <summary>Parses and checks a header; the caller still checks the data CRC.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out RangeCacheEntryHeader header, out string problem)
    {
        header = default;
        problem = "";
        if (source.Length < Size)
        {
            problem = "file shorter than its header";
            return false;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
        {
            problem = "bad magic";
            return false;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(source[HeaderCrcOffset..]) != Crc32C.Compute(0, source[..HeaderCrcOffset]))
        {
            problem = "header checksum mismatch";
            return false;
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(source[4..]) != Version)
        {
            problem = "unknown version";
            return false;
        }

        var offset = BinaryPrimitives.ReadInt64LittleEndian(source[8..]);
        var length = BinaryPrimitives.ReadInt32LittleEndian(source[16..]);
        if (offset < 0 || length <= 0)
        {
            problem = "negative offset or length";
            return false;
        }

        header = new RangeCacheEntryHeader(offset, length, BinaryPrimitives.ReadUInt32LittleEndian(source[20..]));
        return true;
    }

    /// <summary>For messages: which format this is.</summary>
    public static string FormatName => Format;
}
