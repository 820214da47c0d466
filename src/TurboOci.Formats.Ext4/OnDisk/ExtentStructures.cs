using System.Buffers.Binary;

namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>struct ext4_extent_header (12 bytes) at the start of the i_block area and of every tree block.</summary>
public readonly record struct ExtentHeader(ushort Entries, ushort Max, ushort Depth, uint Generation)
{
    public const ushort Magic = 0xF30A;
    public const int Size = 12;

    public static bool TryRead(ReadOnlySpan<byte> source, out ExtentHeader header)
    {
        header = default;
        if (source.Length < Size || BinaryPrimitives.ReadUInt16LittleEndian(source) != Magic)
        {
            return false;
        }

        header = new ExtentHeader(
            BinaryPrimitives.ReadUInt16LittleEndian(source[2..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[8..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], Entries);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Max);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], Depth);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Generation);
    }
}

/// <summary>
/// A leaf entry (struct ext4_extent, 12 bytes): <see cref="Length"/> blocks from logical block
/// <see cref="LogicalBlock"/> at physical block <see cref="PhysicalBlock"/>. Lengths above 32768 on
/// disk mean "uninitialised" (reads as zeros) with length - 32768.
/// </summary>
public readonly record struct Extent(uint LogicalBlock, int Length, long PhysicalBlock, bool Uninitialized)
{
    public const int Size = 12;

    public static Extent Read(ReadOnlySpan<byte> s)
    {
        var rawLength = BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
        var uninit = rawLength > Ext4Constants.MaxInitializedExtentLength;
        var physical = (long)BinaryPrimitives.ReadUInt16LittleEndian(s[6..]) << 32 | BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        return new Extent(BinaryPrimitives.ReadUInt32LittleEndian(s), uninit ? rawLength - Ext4Constants.MaxInitializedExtentLength : rawLength, physical, uninit);
    }

    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, LogicalBlock);
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], (ushort)(Uninitialized ? Length + Ext4Constants.MaxInitializedExtentLength : Length));
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], (ushort)(PhysicalBlock >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], (uint)PhysicalBlock);
    }
}

/// <summary>An index entry (struct ext4_extent_idx, 12 bytes): the subtree for logical blocks from <see cref="LogicalBlock"/>.</summary>
public readonly record struct ExtentIndex(uint LogicalBlock, long ChildBlock)
{
    public const int Size = 12;

    public static ExtentIndex Read(ReadOnlySpan<byte> s) =>
        new(BinaryPrimitives.ReadUInt32LittleEndian(s),
            BinaryPrimitives.ReadUInt32LittleEndian(s[4..]) | (long)BinaryPrimitives.ReadUInt16LittleEndian(s[8..]) << 32);

    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, LogicalBlock);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], (uint)ChildBlock);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], (ushort)(ChildBlock >> 32));
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], 0);
    }
}

/// <summary>
/// A directory entry header (struct ext4_dir_entry_2, 8 bytes plus the name). The metadata_csum tail
/// is an entry with inode 0, rec_len 12, name_len 0 and file type 0xDE holding the block's crc32c.
/// </summary>
public readonly record struct DirEntryHeader(uint Inode, int RecordLength, int NameLength, byte FileType)
{
    public const int Size = 8;
    public const int TailSize = 12;
    public const byte TailFileType = 0xDE;

    public static bool TryRead(ReadOnlySpan<byte> s, out DirEntryHeader header)
    {
        header = default;
        if (s.Length < Size)
        {
            return false;
        }

        header = new DirEntryHeader(BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt16LittleEndian(s[4..]), s[6], s[7]);
        return true;
    }

    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, Inode);
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], checked((ushort)RecordLength));
        d[6] = checked((byte)NameLength);
        d[7] = FileType;
    }

    /// <summary>The smallest record holding a name of <paramref name="nameLength"/> bytes: 8 + name, rounded to 4.</summary>
    public static int MinimumRecordLength(int nameLength) => (Size + nameLength + 3) & ~3;

    public bool IsTail => Inode == 0 && RecordLength == TailSize && NameLength == 0 && FileType == TailFileType;
}
