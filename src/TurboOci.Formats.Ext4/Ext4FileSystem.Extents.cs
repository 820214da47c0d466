using System.Buffers.Binary;
using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>Extent trees: reading them (any depth), building them from a full extent list, freeing them.</summary>
public sealed partial class Ext4FileSystem
{
    private int ExtentsPerBlock => (_blockSize - ExtentHeader.Size) / Extent.Size;

    private const int ExtentsInInode = (Ext4Constants.InodeBlockBytes - ExtentHeader.Size) / Extent.Size;

    /// <summary>The file's extents in logical order, and the tree blocks (index and leaf blocks) holding them.</summary>
    public (List<Extent> Extents, List<long> TreeBlocks) ReadExtentTree(uint ino, Ext4Inode inode)
    {
        var extents = new List<Extent>();
        var treeBlocks = new List<long>();
        if (!inode.Flags.HasFlag(InodeFlags.Extents))
        {
            if (inode.Type is InodeType.Regular or InodeType.Directory || (inode.Type == InodeType.Symlink && inode.RawBlocks != 0 && inode.FileAcl == 0))
            {
                Fail($"inode {ino}.i_flags", InodeByteOffset(ino) + 0x20, "block-mapped (non-extent) files are not supported");
            }

            return (extents, treeBlocks);
        }

        var root = inode.BlockArea.ToArray();
        WalkExtentNode(ino, inode, root, isRoot: true, expectedDepth: -1, extents, treeBlocks, InodeByteOffset(ino) + 0x28);
        for (var i = 1; i < extents.Count; i++)
        {
            if (extents[i].LogicalBlock < (long)extents[i - 1].LogicalBlock + extents[i - 1].Length)
            {
                Fail($"inode {ino} extent tree", InodeByteOffset(ino) + 0x28, $"extent at logical block {extents[i].LogicalBlock} overlaps the previous one");
            }
        }

        return (extents, treeBlocks);
    }

    private void WalkExtentNode(uint ino, Ext4Inode inode, byte[] node, bool isRoot, int expectedDepth, List<Extent> extents, List<long> treeBlocks, long nodeOffset)
    {
        if (!ExtentHeader.TryRead(node, out var header))
        {
            Fail($"inode {ino} extent header", nodeOffset, "bad extent header magic");
        }

        var capacity = isRoot ? ExtentsInInode : ExtentsPerBlock;
        if (header.Max > capacity || header.Entries > header.Max || header.Depth > Ext4Constants.MaxExtentDepth
            || (expectedDepth >= 0 && header.Depth != expectedDepth))
        {
            Fail($"inode {ino} extent header", nodeOffset,
                $"entries {header.Entries}, max {header.Max}, depth {header.Depth} are inconsistent");
        }

        if (!isRoot && _metadataCsum)
        {
            var tailOffset = ExtentHeader.Size + header.Max * Extent.Size;
            var crc = Storage.Crc32C.Compute(Ext4Checksums.InodePrefix(_csumSeed, ino, inode.Generation), node.AsSpan(0, tailOffset));
            if (crc != BinaryPrimitives.ReadUInt32LittleEndian(node.AsSpan(tailOffset)))
            {
                Fail($"inode {ino} extent block checksum", nodeOffset + tailOffset, "checksum mismatch");
            }
        }

        for (var i = 0; i < header.Entries; i++)
        {
            var entry = node.AsSpan(ExtentHeader.Size + i * Extent.Size, Extent.Size);
            if (header.Depth == 0)
            {
                var extent = Extent.Read(entry);
                if (extent.Length == 0 || extent.PhysicalBlock <= _sb.FirstDataBlock || extent.PhysicalBlock > _sb.BlocksCount - extent.Length)
                {
                    Fail($"inode {ino} extent", nodeOffset, $"extent {extent} points outside the filesystem");
                }

                extents.Add(extent);
            }
            else
            {
                var index = ExtentIndex.Read(entry);
                if (index.ChildBlock <= _sb.FirstDataBlock || index.ChildBlock >= _sb.BlocksCount || treeBlocks.Contains(index.ChildBlock))
                {
                    Fail($"inode {ino} extent index", nodeOffset, $"child block {index.ChildBlock} is invalid");
                }

                treeBlocks.Add(index.ChildBlock);
                var child = ReadBlock(index.ChildBlock, $"inode {ino} extent block");
                WalkExtentNode(ino, inode, child, isRoot: false, header.Depth - 1, extents, treeBlocks, index.ChildBlock * _blockSize);
            }
        }
    }

    /// <summary>
    /// Replaces the inode's extent tree with one holding <paramref name="extents"/> (sorted, non-overlapping,
    /// each at most 32768 blocks). Old tree blocks are freed; data blocks are the caller's business. Deeper
    /// trees are built bottom-up when the four in-inode slots do not suffice.
    /// </summary>
    internal void WriteExtentTree(uint ino, Ext4Inode inode, IReadOnlyList<Extent> extents)
    {
        if (inode.Flags.HasFlag(InodeFlags.Extents))
        {
            var (_, oldTree) = ReadExtentTree(ino, inode);
            foreach (var block in oldTree)
            {
                FreeBlocks(block, 1);
                AddInodeBlocks(inode, -1);
            }
        }

        inode.Flags |= InodeFlags.Extents;
        var area = inode.BlockArea;
        area.Clear();
        if (extents.Count <= ExtentsInInode)
        {
            new ExtentHeader((ushort)extents.Count, ExtentsInInode, 0, 0).Write(area);
            for (var i = 0; i < extents.Count; i++)
            {
                extents[i].Write(area[(ExtentHeader.Size + i * Extent.Size)..]);
            }

            return;
        }

        // Build leaves, then index levels, until the top level fits the inode.
        var goal = extents[0].PhysicalBlock;
        var level = new List<ExtentIndex>();
        for (var i = 0; i < extents.Count; i += ExtentsPerBlock)
        {
            var count = Math.Min(ExtentsPerBlock, extents.Count - i);
            var block = AllocateBlock(goal);
            AddInodeBlocks(inode, 1);
            var data = new byte[_blockSize];
            new ExtentHeader((ushort)count, (ushort)ExtentsPerBlock, 0, 0).Write(data);
            for (var k = 0; k < count; k++)
            {
                extents[i + k].Write(data.AsSpan(ExtentHeader.Size + k * Extent.Size));
            }

            WriteTreeBlock(ino, inode, block, data);
            level.Add(new ExtentIndex(extents[i].LogicalBlock, block));
        }

        ushort depth = 1;
        while (level.Count > ExtentsInInode)
        {
            var next = new List<ExtentIndex>();
            for (var i = 0; i < level.Count; i += ExtentsPerBlock)
            {
                var count = Math.Min(ExtentsPerBlock, level.Count - i);
                var block = AllocateBlock(goal);
                AddInodeBlocks(inode, 1);
                var data = new byte[_blockSize];
                new ExtentHeader((ushort)count, (ushort)ExtentsPerBlock, depth, 0).Write(data);
                for (var k = 0; k < count; k++)
                {
                    level[i + k].Write(data.AsSpan(ExtentHeader.Size + k * ExtentIndex.Size));
                }

                WriteTreeBlock(ino, inode, block, data);
                next.Add(new ExtentIndex(level[i].LogicalBlock, block));
            }

            level = next;
            depth++;
        }

        new ExtentHeader((ushort)level.Count, ExtentsInInode, depth, 0).Write(area);
        for (var i = 0; i < level.Count; i++)
        {
            level[i].Write(area[(ExtentHeader.Size + i * ExtentIndex.Size)..]);
        }
    }

    private void WriteTreeBlock(uint ino, Ext4Inode inode, long block, byte[] data)
    {
        if (_metadataCsum)
        {
            var tailOffset = ExtentHeader.Size + ExtentsPerBlock * Extent.Size;
            var crc = Storage.Crc32C.Compute(Ext4Checksums.InodePrefix(_csumSeed, ino, inode.Generation), data.AsSpan(0, tailOffset));
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(tailOffset), crc);
        }

        WriteBlock(block, data);
    }

    /// <summary>
    /// Allocates blocks for the byte ranges <paramref name="dataRanges"/> of a file (rounded out to whole
    /// blocks) and appends them to <paramref name="extents"/>. Returns where each run of whole blocks landed.
    /// </summary>
    internal List<DataPlacement> AllocateData(Ext4Inode inode, IReadOnlyList<ByteRange> dataRanges, List<Extent> extents, long goal)
    {
        var placements = new List<DataPlacement>();
        long lastEnd = -1;
        foreach (var range in dataRanges)
        {
            if (range.Length <= 0)
            {
                continue;
            }

            var firstBlock = range.Offset / _blockSize;
            var endBlock = checked((range.Offset + range.Length + _blockSize - 1) / _blockSize);
            if (firstBlock < lastEnd)
            {
                throw new ArgumentException("data ranges must be sorted and not share blocks", nameof(dataRanges));
            }

            if (endBlock > uint.MaxValue)
            {
                throw new ArgumentException("file too large for ext4 extents (2^32 blocks)", nameof(dataRanges));
            }

            lastEnd = endBlock;
            var logical = firstBlock;
            while (logical < endBlock)
            {
                var want = (int)Math.Min(endBlock - logical, Ext4Constants.MaxInitializedExtentLength);
                var (start, count) = AllocateRun(goal, want);
                goal = start + count;
                AddInodeBlocks(inode, count);
                var last = extents.Count > 0 ? extents[^1] : default;
                if (extents.Count > 0 && last.PhysicalBlock + last.Length == start && last.LogicalBlock + last.Length == logical
                    && last.Length + count <= Ext4Constants.MaxInitializedExtentLength)
                {
                    extents[^1] = last with { Length = last.Length + count };
                }
                else
                {
                    extents.Add(new Extent((uint)logical, count, start, false));
                }

                placements.Add(new DataPlacement(logical * _blockSize, start * _blockSize, (long)count * _blockSize));
                logical += count;
            }
        }

        return placements;
    }

    /// <summary>Frees the data and tree blocks of an extent-mapped inode and empties its tree.</summary>
    internal void FreeInodeBlocks(uint ino, Ext4Inode inode)
    {
        if (!inode.Flags.HasFlag(InodeFlags.Extents))
        {
            return;
        }

        var (extents, tree) = ReadExtentTree(ino, inode);
        foreach (var extent in extents)
        {
            FreeBlocks(extent.PhysicalBlock, extent.Length);
        }

        foreach (var block in tree)
        {
            FreeBlocks(block, 1);
        }

        inode.BlockArea.Clear();
        new ExtentHeader(0, ExtentsInInode, 0, 0).Write(inode.BlockArea);
        inode.RawBlocks = 0;
    }

    /// <summary>Maps a logical block of a file to its physical block, or -1 in a hole (binary search: extents are sorted).</summary>
    internal static long MapBlock(List<Extent> extents, long logical)
    {
        int low = 0, high = extents.Count - 1;
        while (low <= high)
        {
            var mid = (low + high) >>> 1;
            var e = extents[mid];
            if (logical < e.LogicalBlock)
            {
                high = mid - 1;
            }
            else if (logical >= (long)e.LogicalBlock + e.Length)
            {
                low = mid + 1;
            }
            else
            {
                return e.Uninitialized ? -1 : e.PhysicalBlock + (logical - e.LogicalBlock);
            }
        }

        return -1;
    }
}

/// <summary>A byte range of a file.</summary>
public readonly record struct ByteRange(long Offset, long Length);

/// <summary>
/// Where a run of a file's blocks lives on the device: file bytes [FileOffset, +Length) at DeviceOffset.
/// Always whole blocks; bytes past the file size in the last block belong to no one.
/// </summary>
public readonly record struct DataPlacement(long FileOffset, long DeviceOffset, long Length);
