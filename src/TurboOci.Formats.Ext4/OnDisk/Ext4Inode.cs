using System.Buffers.Binary;

namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>Byte offsets in struct ext4_inode (Linux layout of osd1/osd2).</summary>
internal static class InodeFields
{
    public const int Mode = 0x00;
    public const int UidLo = 0x02;
    public const int SizeLo = 0x04;
    public const int Atime = 0x08;
    public const int Ctime = 0x0C;
    public const int Mtime = 0x10;
    public const int Dtime = 0x14;
    public const int GidLo = 0x18;
    public const int LinksCount = 0x1A;
    public const int BlocksLo = 0x1C;
    public const int Flags = 0x20;
    public const int Block = 0x28;
    public const int Generation = 0x64;
    public const int FileAclLo = 0x68;
    public const int SizeHigh = 0x6C;
    public const int BlocksHigh = 0x74;
    public const int FileAclHigh = 0x76;
    public const int UidHigh = 0x78;
    public const int GidHigh = 0x7A;
    public const int ChecksumLo = 0x7C;
    public const int ExtraIsize = 0x80;
    public const int ChecksumHi = 0x82;
    public const int CtimeExtra = 0x84;
    public const int MtimeExtra = 0x88;
    public const int AtimeExtra = 0x8C;
    public const int Crtime = 0x90;
    public const int CrtimeExtra = 0x94;

    /// <summary>i_extra_isize from which i_checksum_hi exists (EXT4_INODE_CSUM_HI_EXTRA_END).</summary>
    public const int ChecksumHiExtraEnd = 4;
}

/// <summary>A timestamp as ext4 stores it: signed seconds (34 bits with the extra field) and nanoseconds.</summary>
public readonly record struct Ext4Time(long Seconds, uint Nanoseconds)
{
    public static Ext4Time FromDateTimeOffset(DateTimeOffset t)
    {
        var ticks = t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rem);
        if (rem < 0)
        {
            seconds--;
            rem += TimeSpan.TicksPerSecond;
        }

        return new Ext4Time(seconds, (uint)(rem * 100));
    }
}

/// <summary>
/// An inode as a typed view over a copy of its on-disk bytes (the whole s_inode_size record, so the
/// extra fields and in-inode xattrs travel with it).
/// </summary>
public sealed class Ext4Inode
{
    private readonly byte[] _bytes;

    public Ext4Inode(byte[] bytes) => _bytes = bytes;

    public Span<byte> Bytes => _bytes;

    public int RecordSize => _bytes.Length;

    public ushort Mode { get => U16(InodeFields.Mode); set => W16(InodeFields.Mode, value); }

    public InodeType Type => InodeTypes.FromMode(Mode);

    public uint Uid
    {
        get => U16(InodeFields.UidLo) | (uint)U16(InodeFields.UidHigh) << 16;
        set
        {
            W16(InodeFields.UidLo, (ushort)value);
            W16(InodeFields.UidHigh, (ushort)(value >> 16));
        }
    }

    public uint Gid
    {
        get => U16(InodeFields.GidLo) | (uint)U16(InodeFields.GidHigh) << 16;
        set
        {
            W16(InodeFields.GidLo, (ushort)value);
            W16(InodeFields.GidHigh, (ushort)(value >> 16));
        }
    }

    public long Size
    {
        get => (long)((ulong)U32(InodeFields.SizeLo) | (ulong)U32(InodeFields.SizeHigh) << 32);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            W32(InodeFields.SizeLo, (uint)value);
            W32(InodeFields.SizeHigh, (uint)(value >> 32));
        }
    }

    public ushort LinksCount { get => U16(InodeFields.LinksCount); set => W16(InodeFields.LinksCount, value); }

    public uint Dtime { get => U32(InodeFields.Dtime); set => W32(InodeFields.Dtime, value); }

    public InodeFlags Flags { get => (InodeFlags)U32(InodeFields.Flags); set => W32(InodeFields.Flags, (uint)value); }

    public uint Generation { get => U32(InodeFields.Generation); set => W32(InodeFields.Generation, value); }

    /// <summary>i_blocks as stored: 512-byte sectors, or filesystem blocks when the inode has HUGE_FILE.</summary>
    public long RawBlocks
    {
        get => U32(InodeFields.BlocksLo) | (long)U16(InodeFields.BlocksHigh) << 32;
        set
        {
            W32(InodeFields.BlocksLo, (uint)value);
            W16(InodeFields.BlocksHigh, checked((ushort)(value >> 32)));
        }
    }

    public long FileAcl
    {
        get => U32(InodeFields.FileAclLo) | (long)U16(InodeFields.FileAclHigh) << 32;
        set
        {
            W32(InodeFields.FileAclLo, (uint)value);
            W16(InodeFields.FileAclHigh, checked((ushort)(value >> 32)));
        }
    }

    /// <summary>The 60-byte i_block area: extent root, fast symlink target or device number.</summary>
    public Span<byte> BlockArea => _bytes.AsSpan(InodeFields.Block, Ext4Constants.InodeBlockBytes);

    public int ExtraIsize
    {
        get => HasExtra ? U16(InodeFields.ExtraIsize) : 0;
        set => W16(InodeFields.ExtraIsize, checked((ushort)value));
    }

    private bool HasExtra => _bytes.Length > Ext4Constants.GoodOldInodeSize;

    public Ext4Time Atime { get => GetTime(InodeFields.Atime, InodeFields.AtimeExtra); set => SetTime(InodeFields.Atime, InodeFields.AtimeExtra, value); }

    public Ext4Time Mtime { get => GetTime(InodeFields.Mtime, InodeFields.MtimeExtra); set => SetTime(InodeFields.Mtime, InodeFields.MtimeExtra, value); }

    public Ext4Time Ctime { get => GetTime(InodeFields.Ctime, InodeFields.CtimeExtra); set => SetTime(InodeFields.Ctime, InodeFields.CtimeExtra, value); }

    public Ext4Time Crtime { get => GetTime(InodeFields.Crtime, InodeFields.CrtimeExtra); set => SetTime(InodeFields.Crtime, InodeFields.CrtimeExtra, value); }

    /// <summary>Sets i_checksum_lo/hi from crc32c(seed, ino, gen, inode with both fields zeroed).</summary>
    public void UpdateChecksum(uint seed, uint inodeNumber) => SetChecksum(ComputeChecksum(seed, inodeNumber));

    public uint ComputeChecksum(uint seed, uint inodeNumber)
    {
        var hasHi = HasChecksumHi;
        var savedLo = U16(InodeFields.ChecksumLo);
        var savedHi = hasHi ? U16(InodeFields.ChecksumHi) : (ushort)0;
        W16(InodeFields.ChecksumLo, 0);
        if (hasHi)
        {
            W16(InodeFields.ChecksumHi, 0);
        }

        var crc = Storage.Crc32C.Compute(Ext4Checksums.InodePrefix(seed, inodeNumber, Generation), _bytes);
        W16(InodeFields.ChecksumLo, savedLo);
        if (hasHi)
        {
            W16(InodeFields.ChecksumHi, savedHi);
        }

        return hasHi ? crc : crc & 0xFFFF;
    }

    public uint StoredChecksum => U16(InodeFields.ChecksumLo) | (HasChecksumHi ? (uint)U16(InodeFields.ChecksumHi) << 16 : 0);

    private bool HasChecksumHi => HasExtra && U16(InodeFields.ExtraIsize) >= InodeFields.ChecksumHiExtraEnd;

    private void SetChecksum(uint crc)
    {
        W16(InodeFields.ChecksumLo, (ushort)crc);
        if (HasChecksumHi)
        {
            W16(InodeFields.ChecksumHi, (ushort)(crc >> 16));
        }
    }

    private Ext4Time GetTime(int field, int extraField)
    {
        long seconds = (int)U32(field);
        uint nanoseconds = 0;
        if (HasExtra && extraField + 4 <= Ext4Constants.GoodOldInodeSize + ExtraIsize)
        {
            var extra = U32(extraField);
            seconds += (long)(extra & 3) << 32;
            nanoseconds = extra >> 2;
        }

        return new Ext4Time(seconds, nanoseconds);
    }

    private void SetTime(int field, int extraField, Ext4Time time)
    {
        W32(field, (uint)time.Seconds);
        if (HasExtra && extraField + 4 <= Ext4Constants.GoodOldInodeSize + ExtraIsize)
        {
            var epoch = (uint)((time.Seconds - (int)time.Seconds) >> 32) & 3;
            W32(extraField, epoch | (time.Nanoseconds << 2));
        }
    }

    private ushort U16(int o) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(o));

    private uint U32(int o) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(o));

    private void W16(int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(o), v);

    private void W32(int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(o), v);
}
