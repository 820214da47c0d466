using System.Buffers.Binary;

namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>Byte offsets in struct ext4_group_desc (the _hi halves exist only in 64-byte descriptors).</summary>
internal static class GroupDescriptorFields
{
    public const int BlockBitmapLo = 0x00;
    public const int InodeBitmapLo = 0x04;
    public const int InodeTableLo = 0x08;
    public const int FreeBlocksLo = 0x0C;
    public const int FreeInodesLo = 0x0E;
    public const int UsedDirsLo = 0x10;
    public const int Flags = 0x12;
    public const int BlockBitmapCsumLo = 0x18;
    public const int InodeBitmapCsumLo = 0x1A;
    public const int ItableUnusedLo = 0x1C;
    public const int Checksum = 0x1E;
    public const int BlockBitmapHi = 0x20;
    public const int InodeBitmapHi = 0x24;
    public const int InodeTableHi = 0x28;
    public const int FreeBlocksHi = 0x2C;
    public const int FreeInodesHi = 0x2E;
    public const int UsedDirsHi = 0x30;
    public const int ItableUnusedHi = 0x32;
    public const int BlockBitmapCsumHi = 0x38;
    public const int InodeBitmapCsumHi = 0x3A;

    /// <summary>Descriptor sizes from which the high checksum halves exist (EXT4_BG_*_CSUM_HI_END).</summary>
    public const int BlockBitmapCsumHiEnd = 0x3A;
    public const int InodeBitmapCsumHiEnd = 0x3C;
}

/// <summary>
/// Every group descriptor, as typed accessors over the on-disk table (which follows the superblock).
/// Fields are split in lo/hi halves; the hi halves count only with 64-byte descriptors.
/// </summary>
public sealed class GroupDescriptorTable
{
    private readonly byte[] _bytes;
    private readonly int _descSize;
    private readonly bool _wide;

    public GroupDescriptorTable(byte[] bytes, int groupCount, int descriptorSize)
    {
        _bytes = bytes;
        GroupCount = groupCount;
        _descSize = descriptorSize;
        _wide = descriptorSize >= 64;
    }

    public int GroupCount { get; }

    public int DescriptorSize => _descSize;

    public ReadOnlySpan<byte> Bytes => _bytes;

    public Span<byte> Descriptor(int group) => _bytes.AsSpan(checked(group * _descSize), _descSize);

    public long BlockBitmap(int g) => Get64(g, GroupDescriptorFields.BlockBitmapLo, GroupDescriptorFields.BlockBitmapHi);

    public long InodeBitmap(int g) => Get64(g, GroupDescriptorFields.InodeBitmapLo, GroupDescriptorFields.InodeBitmapHi);

    public long InodeTable(int g) => Get64(g, GroupDescriptorFields.InodeTableLo, GroupDescriptorFields.InodeTableHi);

    public void SetLocations(int g, long blockBitmap, long inodeBitmap, long inodeTable)
    {
        Set64(g, GroupDescriptorFields.BlockBitmapLo, GroupDescriptorFields.BlockBitmapHi, blockBitmap);
        Set64(g, GroupDescriptorFields.InodeBitmapLo, GroupDescriptorFields.InodeBitmapHi, inodeBitmap);
        Set64(g, GroupDescriptorFields.InodeTableLo, GroupDescriptorFields.InodeTableHi, inodeTable);
    }

    public uint FreeBlocks(int g) => Get32(g, GroupDescriptorFields.FreeBlocksLo, GroupDescriptorFields.FreeBlocksHi);

    public void SetFreeBlocks(int g, uint v) => Set32(g, GroupDescriptorFields.FreeBlocksLo, GroupDescriptorFields.FreeBlocksHi, v);

    public uint FreeInodes(int g) => Get32(g, GroupDescriptorFields.FreeInodesLo, GroupDescriptorFields.FreeInodesHi);

    public void SetFreeInodes(int g, uint v) => Set32(g, GroupDescriptorFields.FreeInodesLo, GroupDescriptorFields.FreeInodesHi, v);

    public uint UsedDirs(int g) => Get32(g, GroupDescriptorFields.UsedDirsLo, GroupDescriptorFields.UsedDirsHi);

    public void SetUsedDirs(int g, uint v) => Set32(g, GroupDescriptorFields.UsedDirsLo, GroupDescriptorFields.UsedDirsHi, v);

    public uint ItableUnused(int g) => Get32(g, GroupDescriptorFields.ItableUnusedLo, GroupDescriptorFields.ItableUnusedHi);

    public void SetItableUnused(int g, uint v) => Set32(g, GroupDescriptorFields.ItableUnusedLo, GroupDescriptorFields.ItableUnusedHi, v);

    public GroupFlags Flags(int g) => (GroupFlags)BinaryPrimitives.ReadUInt16LittleEndian(Descriptor(g)[GroupDescriptorFields.Flags..]);

    public void SetFlags(int g, GroupFlags flags) => BinaryPrimitives.WriteUInt16LittleEndian(Descriptor(g)[GroupDescriptorFields.Flags..], (ushort)flags);

    public ushort StoredChecksum(int g) => BinaryPrimitives.ReadUInt16LittleEndian(Descriptor(g)[GroupDescriptorFields.Checksum..]);

    public void SetChecksum(int g, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Descriptor(g)[GroupDescriptorFields.Checksum..], v);

    public void SetBlockBitmapChecksum(int g, uint crc)
    {
        var d = Descriptor(g);
        BinaryPrimitives.WriteUInt16LittleEndian(d[GroupDescriptorFields.BlockBitmapCsumLo..], (ushort)crc);
        if (_descSize >= GroupDescriptorFields.BlockBitmapCsumHiEnd)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d[GroupDescriptorFields.BlockBitmapCsumHi..], (ushort)(crc >> 16));
        }
    }

    public void SetInodeBitmapChecksum(int g, uint crc)
    {
        var d = Descriptor(g);
        BinaryPrimitives.WriteUInt16LittleEndian(d[GroupDescriptorFields.InodeBitmapCsumLo..], (ushort)crc);
        if (_descSize >= GroupDescriptorFields.InodeBitmapCsumHiEnd)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d[GroupDescriptorFields.InodeBitmapCsumHi..], (ushort)(crc >> 16));
        }
    }

    private long Get64(int g, int lo, int hi)
    {
        var d = Descriptor(g);
        var value = (long)BinaryPrimitives.ReadUInt32LittleEndian(d[lo..]);
        return _wide ? value | (long)BinaryPrimitives.ReadUInt32LittleEndian(d[hi..]) << 32 : value;
    }

    private void Set64(int g, int lo, int hi, long value)
    {
        var d = Descriptor(g);
        BinaryPrimitives.WriteUInt32LittleEndian(d[lo..], (uint)value);
        if (_wide)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d[hi..], (uint)(value >> 32));
        }
    }

    private uint Get32(int g, int lo, int hi)
    {
        var d = Descriptor(g);
        var value = (uint)BinaryPrimitives.ReadUInt16LittleEndian(d[lo..]);
        return _wide ? value | (uint)BinaryPrimitives.ReadUInt16LittleEndian(d[hi..]) << 16 : value;
    }

    private void Set32(int g, int lo, int hi, uint value)
    {
        var d = Descriptor(g);
        BinaryPrimitives.WriteUInt16LittleEndian(d[lo..], (ushort)value);
        if (_wide)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d[hi..], (ushort)(value >> 16));
        }
    }
}
