using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>Byte offsets of the superblock fields used here (struct ext4_super_block).</summary>
internal static class SuperblockFields
{
    public const int InodesCount = 0x00;
    public const int BlocksCountLo = 0x04;
    public const int ReservedBlocksCountLo = 0x08;
    public const int FreeBlocksCountLo = 0x0C;
    public const int FreeInodesCount = 0x10;
    public const int FirstDataBlock = 0x14;
    public const int LogBlockSize = 0x18;
    public const int LogClusterSize = 0x1C;
    public const int BlocksPerGroup = 0x20;
    public const int ClustersPerGroup = 0x24;
    public const int InodesPerGroup = 0x28;
    public const int MountTime = 0x2C;
    public const int WriteTime = 0x30;
    public const int MaxMountCount = 0x36;
    public const int Magic = 0x38;
    public const int State = 0x3A;
    public const int Errors = 0x3C;
    public const int LastCheck = 0x40;
    public const int CreatorOs = 0x48;
    public const int RevLevel = 0x4C;
    public const int FirstInode = 0x54;
    public const int InodeSize = 0x58;
    public const int BlockGroupNumber = 0x5A;
    public const int FeatureCompat = 0x5C;
    public const int FeatureIncompat = 0x60;
    public const int FeatureRoCompat = 0x64;
    public const int Uuid = 0x68;
    public const int VolumeName = 0x78;
    public const int ReservedGdtBlocks = 0xCE;
    public const int HashSeed = 0xEC;
    public const int DefaultHashVersion = 0xFC;
    public const int DescSize = 0xFE;
    public const int MkfsTime = 0x108;
    public const int BlocksCountHi = 0x150;
    public const int ReservedBlocksCountHi = 0x154;
    public const int FreeBlocksCountHi = 0x158;
    public const int MinExtraIsize = 0x15C;
    public const int WantExtraIsize = 0x15E;
    public const int Flags = 0x160;
    public const int LogGroupsPerFlex = 0x174;
    public const int ChecksumType = 0x175;
    public const int ChecksumSeed = 0x270;
    public const int Checksum = 0x3FC;
}

/// <summary>
/// The superblock as a typed view over its 1024 on-disk bytes. Mutable metadata is edited in place,
/// so fields this engine does not know (and any future ones) are preserved byte for byte.
/// </summary>
public sealed class Superblock
{
    private readonly byte[] _bytes;

    private Superblock(byte[] bytes) => _bytes = bytes;

    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>A zeroed superblock for mkfs.</summary>
    public static Superblock CreateEmpty() => new(new byte[Ext4Constants.SuperblockSize]);

    /// <summary>Parses and validates a superblock read from <paramref name="deviceSize"/>-byte storage.</summary>
    public static Superblock Parse(ReadOnlySpan<byte> bytes, long deviceSize)
    {
        if (bytes.Length < Ext4Constants.SuperblockSize)
        {
            Fail("superblock", 0, $"device holds {bytes.Length} bytes of superblock, needs {Ext4Constants.SuperblockSize}");
        }

        var sb = new Superblock(bytes[..Ext4Constants.SuperblockSize].ToArray());
        sb.Validate(deviceSize);
        return sb;
    }

    private void Validate(long deviceSize)
    {
        if (Magic != Ext4Constants.SuperblockMagic)
        {
            Fail("s_magic", SuperblockFields.Magic, $"0x{Magic:X4} is not the ext2/3/4 magic 0xEF53");
        }

        if (HasRoCompat(RoCompatFeatures.MetadataCsum))
        {
            if (ReadU8(SuperblockFields.ChecksumType) != Ext4Constants.ChecksumTypeCrc32C)
            {
                Fail("s_checksum_type", SuperblockFields.ChecksumType, "unknown checksum type");
            }

            var computed = ComputeChecksum();
            if (computed != StoredChecksum)
            {
                Fail("s_checksum", SuperblockFields.Checksum, $"stored 0x{StoredChecksum:X8}, computed 0x{computed:X8}");
            }
        }

        var logBlock = ReadU32(SuperblockFields.LogBlockSize);
        if (logBlock > 6)
        {
            Fail("s_log_block_size", SuperblockFields.LogBlockSize, $"{logBlock} gives a block size over 64 KiB");
        }

        if (ReadU32(SuperblockFields.LogClusterSize) != logBlock || HasRoCompat(RoCompatFeatures.Bigalloc))
        {
            Fail("s_log_cluster_size", SuperblockFields.LogClusterSize, "bigalloc (clusters larger than blocks) is not supported");
        }

        if (RevisionLevel < Ext4Constants.RevisionDynamic)
        {
            Fail("s_rev_level", SuperblockFields.RevLevel, "revision 0 (ext2 without dynamic inode sizes) is not supported");
        }

        var unsupportedIncompat = IncompatFeatures & ~IncompatFeatures.Supported;
        if (unsupportedIncompat != 0)
        {
            Fail("s_feature_incompat", SuperblockFields.FeatureIncompat, $"unsupported features: {unsupportedIncompat}");
        }

        if (!HasIncompat(IncompatFeatures.Extents))
        {
            Fail("s_feature_incompat", SuperblockFields.FeatureIncompat, "the extent feature is required");
        }

        if (BlocksPerGroup == 0 || BlocksPerGroup > 8 * BlockSize || BlocksPerGroup % 8 != 0)
        {
            Fail("s_blocks_per_group", SuperblockFields.BlocksPerGroup, $"{BlocksPerGroup} does not fit one bitmap block of {BlockSize} bytes");
        }

        if (ReadU32(SuperblockFields.ClustersPerGroup) != BlocksPerGroup)
        {
            Fail("s_clusters_per_group", SuperblockFields.ClustersPerGroup, "differs from s_blocks_per_group without bigalloc");
        }

        if (InodesPerGroup == 0 || InodesPerGroup > 8 * BlockSize || InodesPerGroup % 8 != 0)
        {
            Fail("s_inodes_per_group", SuperblockFields.InodesPerGroup, $"{InodesPerGroup} does not fit one bitmap block");
        }

        var inodeSize = InodeSize;
        if (inodeSize < Ext4Constants.GoodOldInodeSize || inodeSize > BlockSize || (inodeSize & (inodeSize - 1)) != 0)
        {
            Fail("s_inode_size", SuperblockFields.InodeSize, $"{inodeSize} is not a power of two between 128 and the block size");
        }

        if (FirstDataBlock != (BlockSize == 1024 ? 1u : 0u))
        {
            Fail("s_first_data_block", SuperblockFields.FirstDataBlock, $"{FirstDataBlock} is wrong for {BlockSize}-byte blocks");
        }

        var blocks = BlocksCount;
        if (blocks <= FirstDataBlock || blocks > long.MaxValue / BlockSize)
        {
            Fail("s_blocks_count", SuperblockFields.BlocksCountLo, $"{blocks} blocks is not a usable size");
        }

        if (blocks * BlockSize > deviceSize)
        {
            Fail("s_blocks_count", SuperblockFields.BlocksCountLo, $"{blocks} blocks of {BlockSize} bytes exceed the {deviceSize}-byte device");
        }

        var groups = GroupCount;
        if ((long)groups * InodesPerGroup != InodesCount)
        {
            Fail("s_inodes_count", SuperblockFields.InodesCount, $"{InodesCount} is not {groups} groups x {InodesPerGroup}");
        }

        if (HasIncompat(IncompatFeatures.SixtyFourBit))
        {
            var descSize = ReadU16(SuperblockFields.DescSize);
            if (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) != 0)
            {
                Fail("s_desc_size", SuperblockFields.DescSize, $"{descSize} is not a power of two between 64 and 1024");
            }
        }

        if (FirstInode < 11 || FirstInode > InodesCount)
        {
            Fail("s_first_ino", SuperblockFields.FirstInode, $"{FirstInode} is out of range");
        }

        if (inodeSize > Ext4Constants.GoodOldInodeSize && WantExtraIsize > inodeSize - Ext4Constants.GoodOldInodeSize)
        {
            Fail("s_want_extra_isize", SuperblockFields.WantExtraIsize, "larger than the inode allows");
        }
    }

    public ushort Magic { get => ReadU16(SuperblockFields.Magic); set => WriteU16(SuperblockFields.Magic, value); }

    public uint InodesCount { get => ReadU32(SuperblockFields.InodesCount); set => WriteU32(SuperblockFields.InodesCount, value); }

    public long BlocksCount
    {
        get => Read64(SuperblockFields.BlocksCountLo, SuperblockFields.BlocksCountHi);
        set => Write64(SuperblockFields.BlocksCountLo, SuperblockFields.BlocksCountHi, value);
    }

    public long ReservedBlocksCount
    {
        get => Read64(SuperblockFields.ReservedBlocksCountLo, SuperblockFields.ReservedBlocksCountHi);
        set => Write64(SuperblockFields.ReservedBlocksCountLo, SuperblockFields.ReservedBlocksCountHi, value);
    }

    public long FreeBlocksCount
    {
        get => Read64(SuperblockFields.FreeBlocksCountLo, SuperblockFields.FreeBlocksCountHi);
        set => Write64(SuperblockFields.FreeBlocksCountLo, SuperblockFields.FreeBlocksCountHi, value);
    }

    public uint FreeInodesCount { get => ReadU32(SuperblockFields.FreeInodesCount); set => WriteU32(SuperblockFields.FreeInodesCount, value); }

    public uint FirstDataBlock { get => ReadU32(SuperblockFields.FirstDataBlock); set => WriteU32(SuperblockFields.FirstDataBlock, value); }

    public int BlockSize => 1024 << (int)Math.Min(ReadU32(SuperblockFields.LogBlockSize), 6u);

    public uint LogBlockSizeField
    {
        get => ReadU32(SuperblockFields.LogBlockSize);
        set
        {
            WriteU32(SuperblockFields.LogBlockSize, value);
            WriteU32(SuperblockFields.LogClusterSize, value);
        }
    }

    public uint BlocksPerGroup
    {
        get => ReadU32(SuperblockFields.BlocksPerGroup);
        set
        {
            WriteU32(SuperblockFields.BlocksPerGroup, value);
            WriteU32(SuperblockFields.ClustersPerGroup, value);
        }
    }

    public uint InodesPerGroup { get => ReadU32(SuperblockFields.InodesPerGroup); set => WriteU32(SuperblockFields.InodesPerGroup, value); }

    public uint RevisionLevel { get => ReadU32(SuperblockFields.RevLevel); set => WriteU32(SuperblockFields.RevLevel, value); }

    public uint FirstInode { get => ReadU32(SuperblockFields.FirstInode); set => WriteU32(SuperblockFields.FirstInode, value); }

    public int InodeSize
    {
        get => RevisionLevel == 0 ? Ext4Constants.GoodOldInodeSize : ReadU16(SuperblockFields.InodeSize);
        set => WriteU16(SuperblockFields.InodeSize, checked((ushort)value));
    }

    public CompatFeatures CompatFeatures
    {
        get => (CompatFeatures)ReadU32(SuperblockFields.FeatureCompat);
        set => WriteU32(SuperblockFields.FeatureCompat, (uint)value);
    }

    public IncompatFeatures IncompatFeatures
    {
        get => (IncompatFeatures)ReadU32(SuperblockFields.FeatureIncompat);
        set => WriteU32(SuperblockFields.FeatureIncompat, (uint)value);
    }

    public RoCompatFeatures RoCompatFeatures
    {
        get => (RoCompatFeatures)ReadU32(SuperblockFields.FeatureRoCompat);
        set => WriteU32(SuperblockFields.FeatureRoCompat, (uint)value);
    }

    public bool HasIncompat(IncompatFeatures f) => (IncompatFeatures & f) == f;

    public bool HasRoCompat(RoCompatFeatures f) => (RoCompatFeatures & f) == f;

    public bool HasCompat(CompatFeatures f) => (CompatFeatures & f) == f;

    public ReadOnlySpan<byte> Uuid => _bytes.AsSpan(SuperblockFields.Uuid, 16);

    public void SetUuid(ReadOnlySpan<byte> uuid) => uuid[..16].CopyTo(_bytes.AsSpan(SuperblockFields.Uuid, 16));

    public void SetVolumeName(string name)
    {
        var span = _bytes.AsSpan(SuperblockFields.VolumeName, 16);
        span.Clear();
        System.Text.Encoding.UTF8.GetBytes(name.AsSpan(0, Math.Min(name.Length, 16)), span);
    }

    public int ReservedGdtBlocks { get => ReadU16(SuperblockFields.ReservedGdtBlocks); set => WriteU16(SuperblockFields.ReservedGdtBlocks, checked((ushort)value)); }

    /// <summary>The group descriptor size: 32 bytes unless 64bit.</summary>
    public int DescriptorSize => HasIncompat(IncompatFeatures.SixtyFourBit) ? ReadU16(SuperblockFields.DescSize) : 32;

    public ushort DescriptorSizeField { set => WriteU16(SuperblockFields.DescSize, value); }

    public int WantExtraIsize { get => ReadU16(SuperblockFields.WantExtraIsize); set => WriteU16(SuperblockFields.WantExtraIsize, checked((ushort)value)); }

    public int MinExtraIsize { get => ReadU16(SuperblockFields.MinExtraIsize); set => WriteU16(SuperblockFields.MinExtraIsize, checked((ushort)value)); }

    public int LogGroupsPerFlex { get => ReadU8(SuperblockFields.LogGroupsPerFlex); set => _bytes[SuperblockFields.LogGroupsPerFlex] = checked((byte)value); }

    public uint StoredChecksum => ReadU32(SuperblockFields.Checksum);

    public int GroupCount => checked((int)((BlocksCount - FirstDataBlock + BlocksPerGroup - 1) / BlocksPerGroup));

    /// <summary>Whether group descriptors carry a checksum (crc16 for uninit_bg, crc32c for metadata_csum).</summary>
    public bool HasGroupChecksums => HasRoCompat(RoCompatFeatures.GdtCsum) || HasRoCompat(RoCompatFeatures.MetadataCsum);

    public bool HasMetadataChecksums => HasRoCompat(RoCompatFeatures.MetadataCsum);

    /// <summary>The seed of every metadata_csum checksum: crc32c(~0, uuid) unless csum_seed stores it.</summary>
    public uint ChecksumSeed => HasIncompat(IncompatFeatures.CsumSeed)
        ? ReadU32(SuperblockFields.ChecksumSeed)
        : Crc32C.Compute(0xFFFFFFFF, Uuid);

    /// <summary>Sets the simple fields mkfs needs that have no dedicated property.</summary>
    internal void SetRaw32(int offset, uint value) => WriteU32(offset, value);

    internal void SetRaw16(int offset, ushort value) => WriteU16(offset, value);

    internal void SetRaw8(int offset, byte value) => _bytes[offset] = value;

    public uint ComputeChecksum() => Crc32C.Compute(0xFFFFFFFF, _bytes.AsSpan(0, SuperblockFields.Checksum));

    /// <summary>Serialises the superblock, refreshing its checksum when metadata_csum is on.</summary>
    public void WriteTo(Span<byte> destination, ushort groupNumber = 0)
    {
        WriteU16(SuperblockFields.BlockGroupNumber, groupNumber);
        if (HasMetadataChecksums)
        {
            WriteU32(SuperblockFields.Checksum, ComputeChecksum());
        }

        _bytes.CopyTo(destination);
        WriteU16(SuperblockFields.BlockGroupNumber, 0);
    }

    private byte ReadU8(int offset) => _bytes[offset];

    private ushort ReadU16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(offset));

    private uint ReadU32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(offset));

    private void WriteU16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(offset), value);

    private void WriteU32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(offset), value);

    // 64-bit counts keep their high half only with the 64bit feature.
    private long Read64(int lo, int hi) =>
        (long)ReadU32(lo) | (HasIncompat(IncompatFeatures.SixtyFourBit) ? (long)ReadU32(hi) << 32 : 0);

    private void Write64(int lo, int hi, long value)
    {
        WriteU32(lo, (uint)value);
        if (HasIncompat(IncompatFeatures.SixtyFourBit))
        {
            WriteU32(hi, (uint)(value >> 32));
        }
        else if (value >> 32 != 0)
        {
            throw new InvalidOperationException($"{value} does not fit a 32-bit count without the 64bit feature");
        }
    }

    private static void Fail(string field, long offset, string problem) =>
        TurboOciFormatException.Throw(Ext4Constants.FormatName, "superblock." + field, Ext4Constants.SuperblockOffset + offset, problem);
}
