using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>Reading and writing inode records in the inode tables.</summary>
public sealed partial class Ext4FileSystem
{
    private uint _nextGeneration = 1;

    internal (long Block, int Offset) InodeLocation(uint ino)
    {
        if (ino == 0 || ino > _sb.InodesCount)
        {
            Fail("inode number", 0, $"inode {ino} is outside 1..{_sb.InodesCount}");
        }

        var ipg = _sb.InodesPerGroup;
        var g = (int)((ino - 1) / ipg);
        var byteOffset = (long)((ino - 1) % ipg) * _sb.InodeSize;
        return (_gdt.InodeTable(g) + byteOffset / _blockSize, (int)(byteOffset % _blockSize));
    }

    /// <summary>The absolute byte offset of an inode record, for error messages.</summary>
    internal long InodeByteOffset(uint ino)
    {
        var (block, offset) = InodeLocation(ino);
        return block * _blockSize + offset;
    }

    /// <summary>Reads inode <paramref name="ino"/>, verifying its metadata_csum checksum.</summary>
    public Ext4Inode ReadInode(uint ino)
    {
        var (block, offset) = InodeLocation(ino);
        var data = ReadBlock(block, $"inode {ino}");
        var inode = new Ext4Inode(data.AsSpan(offset, _sb.InodeSize).ToArray());
        if (inode.RecordSize > Ext4Constants.GoodOldInodeSize
            && inode.ExtraIsize > 0
            && (inode.ExtraIsize > inode.RecordSize - Ext4Constants.GoodOldInodeSize || (inode.ExtraIsize & 3) != 0))
        {
            Fail($"inode {ino}.i_extra_isize", block * _blockSize + offset + 0x80, $"{inode.ExtraIsize} does not fit the inode");
        }

        if (_metadataCsum && inode.Mode != 0)
        {
            var computed = inode.ComputeChecksum(_csumSeed, ino);
            if (computed != inode.StoredChecksum)
            {
                Fail($"inode {ino}.i_checksum", block * _blockSize + offset + 0x7C,
                    $"stored 0x{inode.StoredChecksum:X8}, computed 0x{computed:X8}");
            }
        }

        return inode;
    }

    /// <summary>Writes inode <paramref name="ino"/> back, refreshing its checksum.</summary>
    public void WriteInode(uint ino, Ext4Inode inode)
    {
        EnsureWritable();
        if (_metadataCsum)
        {
            inode.UpdateChecksum(_csumSeed, ino);
        }

        var (block, offset) = InodeLocation(ino);
        var data = ReadBlock(block, $"inode {ino}");
        inode.Bytes.CopyTo(data.AsSpan(offset));
        WriteBlock(block, data);
    }

    /// <summary>A fresh in-memory inode with the filesystem's extra size and the given type and attributes.</summary>
    internal Ext4Inode NewInode(InodeType type, InodeAttributes attributes)
    {
        var inode = new Ext4Inode(new byte[_sb.InodeSize]);
        if (_sb.InodeSize > Ext4Constants.GoodOldInodeSize)
        {
            inode.ExtraIsize = Math.Max(Ext4Constants.MinExtraInodeSize, _sb.WantExtraIsize);
        }

        inode.Mode = (ushort)((ushort)type | (attributes.Mode & InodeTypes.PermissionMask));
        inode.Generation = _nextGeneration++;
        ApplyAttributes(inode, attributes);
        return inode;
    }

    internal void ApplyAttributes(Ext4Inode inode, InodeAttributes attributes)
    {
        inode.Mode = (ushort)((inode.Mode & InodeTypes.TypeMask) | (attributes.Mode & InodeTypes.PermissionMask));
        inode.Uid = attributes.Uid;
        inode.Gid = attributes.Gid;
        var now = Clock();
        inode.Mtime = attributes.Mtime ?? now;
        inode.Atime = attributes.Atime ?? attributes.Mtime ?? now;
        inode.Ctime = attributes.Ctime ?? now;
        inode.Crtime = attributes.Ctime ?? now;
    }

    /// <summary>Adds <paramref name="blocks"/> filesystem blocks to i_blocks (kept in 512-byte units).</summary>
    internal void AddInodeBlocks(Ext4Inode inode, long blocks)
    {
        var units = inode.Flags.HasFlag(InodeFlags.HugeFile) ? blocks : checked(blocks * (_blockSize / 512));
        inode.RawBlocks = checked(inode.RawBlocks + units);
    }
}

/// <summary>Ownership, permissions and times to give an inode. Null times mean "now".</summary>
public sealed record InodeAttributes(ushort Mode, uint Uid = 0, uint Gid = 0, Ext4Time? Mtime = null, Ext4Time? Atime = null, Ext4Time? Ctime = null);
