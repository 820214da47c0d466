using System.Security.Cryptography;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4;

/// <summary>How group descriptors and metadata are checksummed.</summary>
public enum Ext4ChecksumMode
{
    None,

    /// <summary>uninit_bg (gdt_csum): crc16 group descriptor checksums, like overlaybd's base layer.</summary>
    UninitBg,

    /// <summary>metadata_csum: crc32c on every metadata structure, the mke2fs default since 1.43.</summary>
    MetadataCsum,
}

/// <summary>Parameters of <see cref="Ext4FileSystem.Create"/>. Defaults follow mke2fs's ext4 profile.</summary>
public sealed record Ext4CreateOptions
{
    public int BlockSize { get; init; } = 4096;

    public int InodeSize { get; init; } = 256;

    /// <summary>One inode per this many bytes of filesystem (mke2fs's inode_ratio).</summary>
    public int BytesPerInode { get; init; } = 16384;

    public Ext4ChecksumMode Checksums { get; init; } = Ext4ChecksumMode.MetadataCsum;

    public bool SixtyFourBit { get; init; } = true;

    /// <summary>The filesystem UUID; random when null.</summary>
    public Guid? Uuid { get; init; }

    /// <summary>The creation time stamped on the superblock and the root directory; now when null.</summary>
    public Ext4Time? Timestamp { get; init; }

    public string VolumeName { get; init; } = "";
}

/// <summary>Our own mkfs: a fresh filesystem with a root directory and lost+found, in the classic (non-flex_bg) layout.</summary>
public sealed partial class Ext4FileSystem
{
    private const int ReservedInodes = 10;

    /// <summary>Formats <paramref name="device"/> (its whole size) and returns the filesystem opened for writing.</summary>
    public static Ext4FileSystem Create(BlockSource device, Ext4CreateOptions? options = null)
    {
        options ??= new Ext4CreateOptions();
        var bs = options.BlockSize;
        if (bs is not (1024 or 2048 or 4096) || options.InodeSize is not (128 or 256 or 512 or 1024) || options.InodeSize > bs)
        {
            throw new ArgumentException("block size must be 1, 2 or 4 KiB and the inode size a power of two from 128 to the block size");
        }

        var firstDataBlock = bs == 1024 ? 1u : 0u;
        var blocksPerGroup = (uint)(8 * bs);
        var totalBlocks = device.Size / bs;
        var sb = Superblock.CreateEmpty();
        sb.Magic = Ext4Constants.SuperblockMagic;
        sb.RevisionLevel = Ext4Constants.RevisionDynamic;
        sb.LogBlockSizeField = (uint)int.Log2(bs / 1024);
        sb.BlocksPerGroup = blocksPerGroup;
        sb.FirstDataBlock = firstDataBlock;
        sb.InodeSize = options.InodeSize;
        sb.FirstInode = ReservedInodes + 1;
        sb.CompatFeatures = CompatFeatures.ExtAttr | CompatFeatures.DirIndex;
        sb.IncompatFeatures = IncompatFeatures.FileType | IncompatFeatures.Extents | (options.SixtyFourBit ? IncompatFeatures.SixtyFourBit : 0);
        sb.RoCompatFeatures = RoCompatFeatures.SparseSuper | RoCompatFeatures.LargeFile | RoCompatFeatures.HugeFile
            | RoCompatFeatures.DirNlink | (options.InodeSize > 128 ? RoCompatFeatures.ExtraIsize : 0)
            | options.Checksums switch
            {
                Ext4ChecksumMode.MetadataCsum => RoCompatFeatures.MetadataCsum,
                Ext4ChecksumMode.UninitBg => RoCompatFeatures.GdtCsum,
                _ => 0,
            };
        if (options.SixtyFourBit)
        {
            sb.DescriptorSizeField = 64;
        }

        var descSize = sb.DescriptorSize;
        var inodesPerBlock = bs / options.InodeSize;

        // Groups: the last one must hold its metadata plus some data, else it is dropped (as mke2fs does).
        var groups = (int)((totalBlocks - firstDataBlock + blocksPerGroup - 1) / blocksPerGroup);
        var ipg = (uint)Math.Min(8 * bs, ((long)blocksPerGroup * bs / options.BytesPerInode + inodesPerBlock - 1) / inodesPerBlock * inodesPerBlock);
        ipg = Math.Max(ipg, (uint)inodesPerBlock);
        ipg = (ipg + 7) / 8 * 8;
        var itableBlocks = (int)((ipg * options.InodeSize + bs - 1) / bs);
        int gdtBlocks;
        while (true)
        {
            if (groups < 1)
            {
                throw new ArgumentException($"the device ({device.Size} bytes) is too small for an ext4 filesystem");
            }

            gdtBlocks = (groups * descSize + bs - 1) / bs;
            var lastGroupBlocks = totalBlocks - firstDataBlock - (long)(groups - 1) * blocksPerGroup;
            var overhead = (HasSuperblockBackup(groups - 1) ? 1 + gdtBlocks : 0) + 2 + itableBlocks;
            if (lastGroupBlocks >= overhead + 64)
            {
                totalBlocks = Math.Min(totalBlocks, firstDataBlock + (long)groups * blocksPerGroup);
                break;
            }

            groups--;
            totalBlocks = firstDataBlock + (long)groups * blocksPerGroup;
        }

        sb.BlocksCount = totalBlocks;
        sb.InodesPerGroup = ipg;
        sb.InodesCount = checked((uint)(groups * (long)ipg));
        var now = options.Timestamp ?? Ext4Time.FromDateTimeOffset(DateTimeOffset.UtcNow);
        var uuid = (options.Uuid ?? Guid.NewGuid()).ToByteArray(bigEndian: true);
        sb.SetUuid(uuid);
        sb.SetVolumeName(options.VolumeName);
        sb.SetRaw32(SuperblockFields.WriteTime, (uint)now.Seconds);
        sb.SetRaw32(SuperblockFields.LastCheck, (uint)now.Seconds);
        sb.SetRaw32(SuperblockFields.MkfsTime, (uint)now.Seconds);
        sb.SetRaw16(SuperblockFields.MaxMountCount, 0xFFFF);
        sb.SetRaw16(SuperblockFields.State, Ext4Constants.StateClean);
        sb.SetRaw16(SuperblockFields.Errors, Ext4Constants.ErrorsContinue);
        sb.SetRaw32(SuperblockFields.Flags, 1); // signed directory hash
        sb.SetRaw8(SuperblockFields.DefaultHashVersion, 1); // half_md4
        var hashSeed = SHA256.HashData(uuid);
        for (var i = 0; i < 4; i++)
        {
            sb.SetRaw32(SuperblockFields.HashSeed + 4 * i, BitConverter.ToUInt32(hashSeed, 4 * i));
        }

        if (options.InodeSize > 128)
        {
            sb.MinExtraIsize = Ext4Constants.MinExtraInodeSize;
            sb.WantExtraIsize = Ext4Constants.MinExtraInodeSize;
        }

        if (options.Checksums == Ext4ChecksumMode.MetadataCsum)
        {
            sb.SetRaw8(SuperblockFields.ChecksumType, Ext4Constants.ChecksumTypeCrc32C);
        }

        // Lay out every group: [superblock + group table] block bitmap, inode bitmap, inode table, data.
        var gdt = new GroupDescriptorTable(new byte[groups * descSize], groups, descSize);
        long freeBlocks = 0;
        var bitmapBuffers = new List<(long Block, byte[] Data)>();
        for (var g = 0; g < groups; g++)
        {
            var first = firstDataBlock + (long)g * blocksPerGroup;
            var count = (int)Math.Min(blocksPerGroup, totalBlocks - first);
            var cursor = first + (HasSuperblockBackup(g) ? 1 + gdtBlocks : 0);
            gdt.SetLocations(g, cursor, cursor + 1, cursor + 2);
            var used = (int)(cursor + 2 + itableBlocks - first);
            var blockBitmap = new byte[bs];
            SetBits(blockBitmap, 0, used);
            SetBits(blockBitmap, count, bs * 8 - count);
            var inodeBitmap = new byte[bs];
            SetBits(inodeBitmap, (int)ipg, bs * 8 - (int)ipg);
            var usedInodes = g == 0 ? ReservedInodes : 0;
            SetBits(inodeBitmap, 0, usedInodes);
            bitmapBuffers.Add((cursor, blockBitmap));
            bitmapBuffers.Add((cursor + 1, inodeBitmap));
            gdt.SetFreeBlocks(g, (uint)(count - used));
            gdt.SetFreeInodes(g, ipg - (uint)usedInodes);
            if (options.Checksums != Ext4ChecksumMode.None)
            {
                // bg_itable_unused and the flags mean something only with group checksums.
                gdt.SetItableUnused(g, ipg - (uint)usedInodes);
                gdt.SetFlags(g, GroupFlags.InodeTableZeroed);
            }

            freeBlocks += count - used;
            device.Trim((cursor + 2) * bs, (long)itableBlocks * bs);
        }

        sb.FreeBlocksCount = freeBlocks;
        sb.FreeInodesCount = sb.InodesCount - ReservedInodes;
        device.Trim(0, Math.Min(device.Size, (firstDataBlock + 1L + gdtBlocks) * bs));
        foreach (var (block, data) in bitmapBuffers)
        {
            device.WriteAt(block * bs, data);
        }

        var fs = new Ext4FileSystem(device, sb, gdt, writable: true) { Clock = () => now };
        for (var g = 0; g < groups; g++)
        {
            fs._dirtyGroups.Add(g);
        }

        fs._superDirty = true;
        fs.CreateRootDirectory(now);
        var attributes = new InodeAttributes(0x1C0, Mtime: now, Atime: now, Ctime: now);
        fs.CreateDirectory(Ext4Constants.RootInode, "lost+found", attributes);
        fs.Flush();
        fs.WriteBackups();
        fs.Clock = () => Ext4Time.FromDateTimeOffset(DateTimeOffset.UtcNow);
        return fs;

        bool HasSuperblockBackup(int g) => g <= 1 || IsPowerOf(g, 3) || IsPowerOf(g, 5) || IsPowerOf(g, 7);
    }

    private void CreateRootDirectory(Ext4Time now)
    {
        // The root inode is reserved (already marked in the bitmap), so it is written, not allocated.
        WriteNewDirectory(Ext4Constants.RootInode, Ext4Constants.RootInode, new InodeAttributes(0x1ED, Mtime: now, Atime: now, Ctime: now));
        _gdt.SetUsedDirs(0, _gdt.UsedDirs(0) + 1);
        _dirtyGroups.Add(0);
    }

    /// <summary>Writes the superblock and group table copies into every group that holds a backup.</summary>
    private void WriteBackups()
    {
        var sbBytes = new byte[_blockSize];
        for (var g = 1; g < _gdt.GroupCount; g++)
        {
            if (!GroupHasSuperblock(g))
            {
                continue;
            }

            Array.Clear(sbBytes);
            _sb.WriteTo(sbBytes.AsSpan(0, Ext4Constants.SuperblockSize), (ushort)g);
            var first = GroupFirstBlock(g);
            _device.WriteAt(first * _blockSize, sbBytes);
            _device.WriteAt((first + 1) * _blockSize, _gdt.Bytes);
        }

        _device.Flush();
    }
}
