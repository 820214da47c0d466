using System.Numerics;
using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>Block and inode allocation: bitmaps, group counts, uninit groups and superblock counters.</summary>
public sealed partial class Ext4FileSystem
{
    private int _lastInodeGroup;

    public int GroupOfBlock(long block) => (int)((block - _sb.FirstDataBlock) / _sb.BlocksPerGroup);

    public long GroupFirstBlock(int g) => _sb.FirstDataBlock + (long)g * _sb.BlocksPerGroup;

    /// <summary>How many blocks group <paramref name="g"/> spans (the last group may be short).</summary>
    public int GroupBlockCount(int g) => (int)Math.Min(_sb.BlocksPerGroup, _sb.BlocksCount - GroupFirstBlock(g));

    /// <summary>Whether group <paramref name="g"/> holds a superblock backup (sparse_super: 0, 1 and powers of 3, 5, 7).</summary>
    public bool GroupHasSuperblock(int g)
    {
        if (g <= 1 || !_sb.HasRoCompat(RoCompatFeatures.SparseSuper))
        {
            return true;
        }

        return IsPowerOf(g, 3) || IsPowerOf(g, 5) || IsPowerOf(g, 7);
    }

    internal static bool IsPowerOf(int value, int b)
    {
        var n = 1L;
        while (n < value)
        {
            n *= b;
        }

        return n == value;
    }

    internal int GdtBlocks => (int)(((long)_gdt.GroupCount * _gdt.DescriptorSize + _blockSize - 1) / _blockSize);

    /// <summary>
    /// The block bitmap of <paramref name="g"/>. A BLOCK_UNINIT group has none on disk: its bitmap is
    /// derived (superblock copy, group table, reserved GDT and any group's bitmaps or inode table that
    /// flex_bg placed here) and, when <paramref name="forWrite"/>, materialised and the flag cleared.
    /// </summary>
    private byte[] BlockBitmap(int g, bool forWrite)
    {
        var location = _gdt.BlockBitmap(g);
        if (!_gdt.Flags(g).HasFlag(GroupFlags.BlockUninit))
        {
            return ReadBlock(location, $"group {g} block bitmap");
        }

        var bitmap = new byte[_blockSize];
        var first = GroupFirstBlock(g);
        var count = GroupBlockCount(g);
        if (GroupHasSuperblock(g))
        {
            var overhead = 1 + GdtBlocks + _sb.ReservedGdtBlocks;
            SetBits(bitmap, 0, Math.Min(overhead, count));
        }

        for (var other = 0; other < _gdt.GroupCount; other++)
        {
            MarkIfInGroup(bitmap, first, count, _gdt.BlockBitmap(other), 1);
            MarkIfInGroup(bitmap, first, count, _gdt.InodeBitmap(other), 1);
            MarkIfInGroup(bitmap, first, count, _gdt.InodeTable(other), InodeTableBlocks);
        }

        SetBits(bitmap, count, _blockSize * 8 - count);
        if (forWrite)
        {
            _gdt.SetFlags(g, _gdt.Flags(g) & ~GroupFlags.BlockUninit);
            WriteBlock(location, bitmap);
            _dirtyGroups.Add(g);
        }

        return bitmap;
    }

    private static void MarkIfInGroup(byte[] bitmap, long groupFirst, int groupCount, long start, long length)
    {
        var from = Math.Max(start, groupFirst);
        var to = Math.Min(start + length, groupFirst + groupCount);
        if (to > from)
        {
            SetBits(bitmap, (int)(from - groupFirst), (int)(to - from));
        }
    }

    private byte[] InodeBitmap(int g, bool forWrite)
    {
        var location = _gdt.InodeBitmap(g);
        if (!_gdt.Flags(g).HasFlag(GroupFlags.InodeUninit))
        {
            return ReadBlock(location, $"group {g} inode bitmap");
        }

        var bitmap = new byte[_blockSize];
        SetBits(bitmap, (int)_sb.InodesPerGroup, _blockSize * 8 - (int)_sb.InodesPerGroup);
        if (forWrite)
        {
            _gdt.SetFlags(g, _gdt.Flags(g) & ~GroupFlags.InodeUninit);
            _gdt.SetItableUnused(g, _sb.InodesPerGroup);
            WriteBlock(location, bitmap);
            _dirtyGroups.Add(g);
        }

        return bitmap;
    }

    internal static void SetBits(byte[] bitmap, int start, int count)
    {
        for (var i = start; i < start + count; i++)
        {
            bitmap[i >> 3] |= (byte)(1 << (i & 7));
        }
    }

    private static bool TestBit(byte[] bitmap, int bit) => (bitmap[bit >> 3] & (1 << (bit & 7))) != 0;

    /// <summary>Whether a block is allocated according to its group's bitmap.</summary>
    public bool IsBlockInUse(long block)
    {
        var g = GroupOfBlock(block);
        return TestBit(BlockBitmap(g, forWrite: false), (int)(block - GroupFirstBlock(g)));
    }

    /// <summary>
    /// Allocates one run of up to <paramref name="maxCount"/> contiguous free blocks, searching from
    /// <paramref name="goal"/> onwards and wrapping around. Returns the first block and the run length.
    /// </summary>
    internal (long Start, int Count) AllocateRun(long goal, int maxCount)
    {
        EnsureWritable();
        if (_sb.FreeBlocksCount <= 0)
        {
            throw new IOException("ext4: no free blocks left (ENOSPC)");
        }

        if (goal <= _sb.FirstDataBlock || goal >= _sb.BlocksCount)
        {
            goal = _sb.FirstDataBlock;
        }

        var startGroup = GroupOfBlock(goal);
        for (var i = 0; i <= _gdt.GroupCount; i++)
        {
            var g = (startGroup + i) % _gdt.GroupCount;
            if (_gdt.FreeBlocks(g) == 0)
            {
                continue;
            }

            var bitmap = BlockBitmap(g, forWrite: false);
            var count = GroupBlockCount(g);
            var from = i == 0 ? (int)(goal - GroupFirstBlock(g)) : 0;
            var bit = FindZero(bitmap, from, count);
            if (bit < 0 && from > 0)
            {
                bit = FindZero(bitmap, 0, count);
            }

            if (bit < 0)
            {
                continue;
            }

            var run = 1;
            while (run < maxCount && bit + run < count && !TestBit(bitmap, bit + run))
            {
                run++;
            }

            bitmap = BlockBitmap(g, forWrite: true);
            SetBits(bitmap, bit, run);
            WriteBlock(_gdt.BlockBitmap(g), bitmap);
            _gdt.SetFreeBlocks(g, _gdt.FreeBlocks(g) - (uint)run);
            _dirtyGroups.Add(g);
            _sb.FreeBlocksCount -= run;
            _superDirty = true;
            return (GroupFirstBlock(g) + bit, run);
        }

        throw new IOException("ext4: no free blocks left (ENOSPC)");
    }

    /// <summary>The first clear bit in [<paramref name="from"/>, <paramref name="limit"/>), or −1.</summary>
    private static int FindZero(byte[] bitmap, int from, int limit)
    {
        var bit = from;
        for (; bit < limit && (bit & 7) != 0; bit++)
        {
            if (!TestBit(bitmap, bit))
            {
                return bit;
            }
        }

        if (bit >= limit)
        {
            return -1;
        }

        // Whole bytes at once (vectorised): allocation scans from a group's start, past every inode or block in use.
        var first = bit >> 3;
        var notFull = bitmap.AsSpan(first, ((limit - 1) >> 3) - first + 1).IndexOfAnyExcept((byte)0xFF);
        if (notFull < 0)
        {
            return -1;
        }

        var found = ((first + notFull) << 3) + BitOperations.TrailingZeroCount(~bitmap[first + notFull]);
        return found < limit ? found : -1;
    }

    /// <summary>Allocates one block near <paramref name="goal"/> for metadata (tree, directory or xattr block).</summary>
    internal long AllocateBlock(long goal) => AllocateRun(goal, 1).Start;

    /// <summary>Frees <paramref name="count"/> blocks from <paramref name="start"/>, forgetting any cached copy.</summary>
    internal void FreeBlocks(long start, long count)
    {
        EnsureWritable();
        while (count > 0)
        {
            var g = GroupOfBlock(start);
            var bit = (int)(start - GroupFirstBlock(g));
            var inGroup = (int)Math.Min(count, GroupBlockCount(g) - bit);
            var bitmap = BlockBitmap(g, forWrite: true);
            for (var i = 0; i < inGroup; i++)
            {
                if (!TestBit(bitmap, bit + i))
                {
                    throw new InvalidOperationException($"ext4: freeing block {start + i}, which is already free");
                }

                bitmap[(bit + i) >> 3] &= (byte)~(1 << ((bit + i) & 7));
                DropCachedBlock(start + i);
            }

            WriteBlock(_gdt.BlockBitmap(g), bitmap);
            _gdt.SetFreeBlocks(g, _gdt.FreeBlocks(g) + (uint)inGroup);
            _dirtyGroups.Add(g);
            _sb.FreeBlocksCount += inGroup;
            _superDirty = true;
            start += inGroup;
            count -= inGroup;
        }
    }

    /// <summary>Allocates an inode, preferring the group of <paramref name="nearInode"/>.</summary>
    internal uint AllocateInode(bool directory, uint nearInode)
    {
        EnsureWritable();
        if (_sb.FreeInodesCount == 0)
        {
            throw new IOException("ext4: no free inodes left (ENOSPC)");
        }

        var ipg = _sb.InodesPerGroup;
        var startGroup = nearInode == 0 ? _lastInodeGroup : (int)((nearInode - 1) / ipg);
        for (var i = 0; i < _gdt.GroupCount; i++)
        {
            var g = (startGroup + i) % _gdt.GroupCount;
            if (_gdt.FreeInodes(g) == 0)
            {
                continue;
            }

            var bitmap = InodeBitmap(g, forWrite: false);
            var first = g == 0 ? (int)_sb.FirstInode - 1 : 0;
            var bit = FindZero(bitmap, first, (int)ipg);
            if (bit < 0)
            {
                continue;
            }

            bitmap = InodeBitmap(g, forWrite: true);
            SetBits(bitmap, bit, 1);
            WriteBlock(_gdt.InodeBitmap(g), bitmap);
            ExtendUsedInodeTable(g, bit);
            _gdt.SetFreeInodes(g, _gdt.FreeInodes(g) - 1);
            if (directory)
            {
                _gdt.SetUsedDirs(g, _gdt.UsedDirs(g) + 1);
            }

            _dirtyGroups.Add(g);
            _sb.FreeInodesCount--;
            _superDirty = true;
            _lastInodeGroup = g;
            return (uint)(g * ipg + bit + 1);
        }

        throw new IOException("ext4: no free inodes left (ENOSPC)");
    }

    /// <summary>
    /// Keeps bg_itable_unused covering only never-used slots. Slots newly brought into the used range
    /// are zeroed unless the group's table is known to be zeroed, because e2fsck reads every slot below
    /// the high-water mark.
    /// </summary>
    private void ExtendUsedInodeTable(int g, int index)
    {
        if (!_sb.HasGroupChecksums)
        {
            return;
        }

        var ipg = (int)_sb.InodesPerGroup;
        var usedEnd = ipg - (int)_gdt.ItableUnused(g);
        if (index < usedEnd)
        {
            return;
        }

        if (!_gdt.Flags(g).HasFlag(GroupFlags.InodeTableZeroed))
        {
            for (var slot = usedEnd; slot <= index; slot++)
            {
                var (block, offset) = InodeLocation((uint)(g * ipg + slot + 1));
                var data = ReadBlock(block, "inode table");
                data.AsSpan(offset, _sb.InodeSize).Clear();
                WriteBlock(block, data);
            }
        }

        _gdt.SetItableUnused(g, (uint)(ipg - index - 1));
    }

    internal void FreeInode(uint ino, bool directory)
    {
        var ipg = _sb.InodesPerGroup;
        var g = (int)((ino - 1) / ipg);
        var bit = (int)((ino - 1) % ipg);
        var bitmap = InodeBitmap(g, forWrite: true);
        if (!TestBit(bitmap, bit))
        {
            throw new InvalidOperationException($"ext4: freeing inode {ino}, which is already free");
        }

        bitmap[bit >> 3] &= (byte)~(1 << (bit & 7));
        WriteBlock(_gdt.InodeBitmap(g), bitmap);
        _gdt.SetFreeInodes(g, _gdt.FreeInodes(g) + 1);
        if (directory)
        {
            _gdt.SetUsedDirs(g, _gdt.UsedDirs(g) - 1);
        }

        _dirtyGroups.Add(g);
        _sb.FreeInodesCount++;
        _superDirty = true;
    }

    public bool IsInodeInUse(uint ino)
    {
        var g = (int)((ino - 1) / _sb.InodesPerGroup);
        return TestBit(InodeBitmap(g, forWrite: false), (int)((ino - 1) % _sb.InodesPerGroup));
    }
}
