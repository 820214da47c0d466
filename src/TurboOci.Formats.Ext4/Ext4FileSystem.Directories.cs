using System.Buffers.Binary;
using System.Text;
using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>
/// Directories: linear entry blocks (with the metadata_csum tail), a per-directory name index in memory,
/// and conversion of htree-indexed directories to linear ones when they are modified (the htree blocks
/// are rewritten as empty entry blocks, which is what e2fsck -D's inverse would accept).
/// </summary>
public sealed partial class Ext4FileSystem
{
    // Names are bytes on disk; Latin-1 maps each byte to one char, so these keys are lossless.
    private readonly Dictionary<uint, DirectoryIndex> _dirIndexes = [];

    private sealed class DirectoryIndex
    {
        /// <summary>Name → inode, type and the logical directory block holding the entry.</summary>
        public Dictionary<string, (uint Inode, DirEntryType Type, long Block)> Names { get; } = new(StringComparer.Ordinal);

        public long FreeHint { get; set; }
    }

    private int DirTailSize => _metadataCsum ? DirEntryHeader.TailSize : 0;

    internal static string NameKey(ReadOnlySpan<byte> name) => Encoding.Latin1.GetString(name);

    internal static byte[] NameBytes(string key) => Encoding.Latin1.GetBytes(key);

    /// <summary>Visits every live entry (including "." and "..") of a directory, block by block.</summary>
    private void ScanDirectory(uint dirIno, Ext4Inode dir, Func<long, long, byte[], int, DirEntryHeader, bool> visit)
    {
        var (extents, _) = ReadExtentTree(dirIno, dir);
        var blocks = dir.Size / _blockSize;
        for (long b = 0; b < blocks; b++)
        {
            var physical = MapBlock(extents, b);
            if (physical < 0)
            {
                Fail($"directory {dirIno} extents", InodeByteOffset(dirIno) + 0x28, $"hole at block {b}");
            }

            var data = ReadDirectoryBlock(dirIno, dir, physical);
            for (var offset = 0; offset < _blockSize;)
            {
                DirEntryHeader.TryRead(data.AsSpan(offset), out var h);
                if (h.IsTail)
                {
                    break;
                }

                if (h.Inode != 0 && !visit(b, physical, data, offset, h))
                {
                    return;
                }

                offset += h.RecordLength;
            }
        }
    }

    /// <summary>Reads a directory block and checks its entry chain (and its checksum, if it has a tail).</summary>
    private byte[] ReadDirectoryBlock(uint dirIno, Ext4Inode dir, long physical)
    {
        if (_cache.TryGetValue(physical, out var cached))
        {
            return cached; // checked when it was loaded, or written by us
        }

        var data = ReadBlock(physical, $"directory {dirIno} block");
        var at = physical * _blockSize;
        var offset = 0;
        while (offset < _blockSize)
        {
            if (!DirEntryHeader.TryRead(data.AsSpan(offset), out var h)
                || h.RecordLength < DirEntryHeader.Size || (h.RecordLength & 3) != 0
                || h.RecordLength > _blockSize - offset
                || (h.Inode != 0 && DirEntryHeader.Size + h.NameLength > h.RecordLength)
                || h.Inode > _sb.InodesCount)
            {
                Fail($"directory {dirIno} entry", at + offset, "corrupt directory entry");
            }

            if (h.IsTail && offset + DirEntryHeader.TailSize == _blockSize)
            {
                if (_metadataCsum)
                {
                    var crc = Storage.Crc32C.Compute(Ext4Checksums.InodePrefix(_csumSeed, dirIno, dir.Generation), data.AsSpan(0, offset));
                    if (crc != BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 8)))
                    {
                        Fail($"directory {dirIno} block checksum", at + offset + 8, "checksum mismatch");
                    }
                }

                break;
            }

            offset += h.RecordLength;
        }

        return data;
    }

    private void WriteDirectoryBlock(uint dirIno, Ext4Inode dir, long physical, byte[] data)
    {
        if (_metadataCsum)
        {
            var tail = _blockSize - DirEntryHeader.TailSize;
            new DirEntryHeader(0, DirEntryHeader.TailSize, 0, DirEntryHeader.TailFileType).Write(data.AsSpan(tail));
            var crc = Storage.Crc32C.Compute(Ext4Checksums.InodePrefix(_csumSeed, dirIno, dir.Generation), data.AsSpan(0, tail));
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(tail + 8), crc);
        }

        WriteBlock(physical, data);
    }

    /// <summary>The entries of a directory, without "." and "..".</summary>
    public List<DirectoryEntry> ListDirectory(uint dirIno)
    {
        var dir = ReadInode(dirIno);
        RequireDirectory(dirIno, dir);
        var result = new List<DirectoryEntry>();
        ScanDirectory(dirIno, dir, (_, _, data, offset, h) =>
        {
            var name = data.AsSpan(offset + DirEntryHeader.Size, h.NameLength);
            if (!IsDotOrDotDot(name))
            {
                result.Add(new DirectoryEntry(Encoding.UTF8.GetString(name), NameKey(name), h.Inode, (DirEntryType)h.FileType));
            }

            return true;
        });
        return result;
    }

    private static bool IsDotOrDotDot(ReadOnlySpan<byte> name) =>
        name.SequenceEqual("."u8) || name.SequenceEqual(".."u8);

    private void RequireDirectory(uint ino, Ext4Inode inode)
    {
        if (inode.Type != InodeType.Directory)
        {
            throw new IOException($"ext4: inode {ino} is not a directory (ENOTDIR)");
        }
    }

    private DirectoryIndex GetDirectoryIndex(uint dirIno)
    {
        if (_dirIndexes.TryGetValue(dirIno, out var index))
        {
            return index;
        }

        if (_dirIndexes.Count > 4096)
        {
            _dirIndexes.Clear();
        }

        index = new DirectoryIndex();
        var dir = ReadInode(dirIno);
        RequireDirectory(dirIno, dir);
        ScanDirectory(dirIno, dir, (block, _, data, offset, h) =>
        {
            index.Names[NameKey(data.AsSpan(offset + DirEntryHeader.Size, h.NameLength))] = (h.Inode, (DirEntryType)h.FileType, block);
            return true;
        });
        _dirIndexes[dirIno] = index;
        return index;
    }

    /// <summary>Looks up one name (raw bytes as a Latin-1 key, see <see cref="NameKey"/>) in a directory.</summary>
    internal (uint Inode, DirEntryType Type)? LookupKey(uint dirIno, string key) =>
        GetDirectoryIndex(dirIno).Names.TryGetValue(key, out var hit) ? (hit.Inode, hit.Type) : null;

    /// <summary>Adds an entry. The caller has checked the name is not present.</summary>
    internal void AddEntry(uint dirIno, string key, uint ino, DirEntryType type)
    {
        var name = NameBytes(key);
        ValidateName(name);
        var index = GetDirectoryIndex(dirIno);
        var dir = ReadInode(dirIno);
        if (dir.Flags.HasFlag(InodeFlags.Index))
        {
            ConvertHtreeToLinear(dirIno, dir);
        }

        var (extents, _) = ReadExtentTree(dirIno, dir);
        var need = DirEntryHeader.MinimumRecordLength(name.Length);
        var blocks = dir.Size / _blockSize;
        for (var b = index.FreeHint; b < blocks; b++)
        {
            var physical = MapBlock(extents, b);
            var data = ReadDirectoryBlock(dirIno, dir, physical);
            var limit = _blockSize - DirTailSize;
            for (var offset = 0; offset < limit;)
            {
                DirEntryHeader.TryRead(data.AsSpan(offset), out var h);
                var used = h.Inode == 0 ? 0 : DirEntryHeader.MinimumRecordLength(h.NameLength);
                if (h.RecordLength - used >= need)
                {
                    if (used > 0)
                    {
                        (h with { RecordLength = used }).Write(data.AsSpan(offset));
                    }

                    var at = offset + used;
                    new DirEntryHeader(ino, h.RecordLength - used, name.Length, (byte)FileTypeField(type)).Write(data.AsSpan(at));
                    name.CopyTo(data.AsSpan(at + DirEntryHeader.Size));
                    WriteDirectoryBlock(dirIno, dir, physical, data);
                    index.FreeHint = b;
                    index.Names[key] = (ino, type, b);
                    return;
                }

                offset += h.RecordLength;
            }
        }

        // No room: append a block to the directory.
        var goal = extents.Count > 0 ? extents[^1].PhysicalBlock + extents[^1].Length : 0;
        var block = AllocateBlock(goal);
        AddInodeBlocks(dir, 1);
        var last = extents.Count > 0 ? extents[^1] : default;
        if (extents.Count > 0 && last.PhysicalBlock + last.Length == block && last.LogicalBlock + last.Length == blocks
            && last.Length < Ext4Constants.MaxInitializedExtentLength)
        {
            extents[^1] = last with { Length = last.Length + 1 };
        }
        else
        {
            extents.Add(new Extent((uint)blocks, 1, block, false));
        }

        WriteExtentTree(dirIno, dir, extents);
        var fresh = new byte[_blockSize];
        new DirEntryHeader(ino, _blockSize - DirTailSize, name.Length, (byte)FileTypeField(type)).Write(fresh);
        name.CopyTo(fresh.AsSpan(DirEntryHeader.Size));
        WriteDirectoryBlock(dirIno, dir, block, fresh);
        dir.Size += _blockSize;
        WriteInode(dirIno, dir);
        index.FreeHint = blocks;
        index.Names[key] = (ino, type, blocks);
    }

    private DirEntryType FileTypeField(DirEntryType type) =>
        _sb.HasIncompat(IncompatFeatures.FileType) ? type : DirEntryType.Unknown;

    private static void ValidateName(ReadOnlySpan<byte> name)
    {
        if (name.Length == 0 || name.Length > Ext4Constants.MaxNameLength || name.Contains((byte)'/') || name.Contains((byte)0) || IsDotOrDotDot(name))
        {
            throw new ArgumentException($"'{Encoding.UTF8.GetString(name)}' is not a valid file name (1-255 bytes, no '/', NUL, '.' or '..')");
        }
    }

    /// <summary>Removes the entry <paramref name="key"/> from a directory; returns false when absent.</summary>
    internal bool RemoveEntry(uint dirIno, string key)
    {
        var name = NameBytes(key);
        var index = GetDirectoryIndex(dirIno);
        if (!index.Names.TryGetValue(key, out var known))
        {
            return false;
        }

        var dir = ReadInode(dirIno);
        if (dir.Flags.HasFlag(InodeFlags.Index))
        {
            ConvertHtreeToLinear(dirIno, dir);
        }

        var (extents, _) = ReadExtentTree(dirIno, dir);
        var blocks = dir.Size / _blockSize;

        // The index records which block holds the entry; the full scan after it is only a safety net.
        foreach (var b in new[] { known.Block }.Concat(Enumerable.Range(0, (int)blocks).Select(i => (long)i)))
        {
            var physical = MapBlock(extents, b);
            var data = ReadDirectoryBlock(dirIno, dir, physical);
            var previous = -1;
            for (var offset = 0; offset < _blockSize - DirTailSize;)
            {
                DirEntryHeader.TryRead(data.AsSpan(offset), out var h);
                if (h.Inode != 0 && data.AsSpan(offset + DirEntryHeader.Size, h.NameLength).SequenceEqual(name))
                {
                    if (previous >= 0)
                    {
                        DirEntryHeader.TryRead(data.AsSpan(previous), out var p);
                        (p with { RecordLength = p.RecordLength + h.RecordLength }).Write(data.AsSpan(previous));
                    }
                    else
                    {
                        (h with { Inode = 0 }).Write(data.AsSpan(offset));
                    }

                    WriteDirectoryBlock(dirIno, dir, physical, data);
                    index.Names.Remove(key);
                    index.FreeHint = Math.Min(index.FreeHint, b);
                    return true;
                }

                previous = offset;
                offset += h.RecordLength;
            }
        }

        throw new InvalidOperationException($"ext4: directory {dirIno} index and blocks disagree about '{key}'");
    }

    /// <summary>The first block of a new directory: ".", ".." and (with metadata_csum) the tail.</summary>
    private byte[] NewDirectoryBlock(uint self, uint parent)
    {
        var data = new byte[_blockSize];
        var dirType = (byte)FileTypeField(DirEntryType.Directory);
        new DirEntryHeader(self, 12, 1, dirType).Write(data);
        data[8] = (byte)'.';
        new DirEntryHeader(parent, _blockSize - 12 - DirTailSize, 2, dirType).Write(data.AsSpan(12));
        data[20] = (byte)'.';
        data[21] = (byte)'.';
        return data;
    }

    /// <summary>
    /// Drops the htree index of a directory: the root block keeps "." and "..", interior index blocks
    /// become empty entry blocks, and the leaf blocks (already valid linear blocks) stay as they are.
    /// </summary>
    private void ConvertHtreeToLinear(uint dirIno, Ext4Inode dir)
    {
        var (extents, _) = ReadExtentTree(dirIno, dir);
        var rootPhysical = MapBlock(extents, 0);
        var root = ReadBlock(rootPhysical, $"directory {dirIno} htree root");
        var levels = root[24 + 6];
        if (root[24 + 5] != 8 || levels > 2)
        {
            Fail($"directory {dirIno} htree root", rootPhysical * _blockSize + 24, "bad dx_root_info");
        }

        var nodeBlocks = new List<long>();
        CollectDxNodes(dirIno, extents, root, rootPhysical * _blockSize, 32, levels, nodeBlocks, dir.Size / _blockSize);
        foreach (var logical in nodeBlocks)
        {
            var empty = new byte[_blockSize];
            new DirEntryHeader(0, _blockSize - DirTailSize, 0, 0).Write(empty);
            WriteDirectoryBlock(dirIno, dir, MapBlock(extents, logical), empty);
        }

        DirEntryHeader.TryRead(root, out var dot);
        DirEntryHeader.TryRead(root.AsSpan(12), out var dotdot);
        var fresh = NewDirectoryBlock(dot.Inode, dotdot.Inode);
        WriteDirectoryBlock(dirIno, dir, rootPhysical, fresh);
        dir.Flags &= ~InodeFlags.Index;
        WriteInode(dirIno, dir);
    }

    private void CollectDxNodes(uint dirIno, List<Extent> extents, byte[] node, long nodeOffset, int countOffset, int levelsBelow, List<long> nodeBlocks, long dirBlocks)
    {
        if (levelsBelow == 0)
        {
            return;
        }

        var limit = BinaryPrimitives.ReadUInt16LittleEndian(node.AsSpan(countOffset));
        var count = BinaryPrimitives.ReadUInt16LittleEndian(node.AsSpan(countOffset + 2));
        if (count > limit || countOffset + count * 8 > _blockSize)
        {
            Fail($"directory {dirIno} htree node", nodeOffset + countOffset, "count exceeds limit");
        }

        for (var i = 0; i < count; i++)
        {
            var logical = BinaryPrimitives.ReadUInt32LittleEndian(node.AsSpan(countOffset + i * 8 + 4)) & 0x0FFFFFFF;
            if (logical == 0 || logical >= dirBlocks || nodeBlocks.Contains(logical))
            {
                Fail($"directory {dirIno} htree node", nodeOffset + countOffset + i * 8 + 4, $"index points at block {logical}");
            }

            nodeBlocks.Add(logical);
            var childBlock = MapBlock(extents, logical);
            var child = ReadBlock(childBlock, $"directory {dirIno} htree node");
            CollectDxNodes(dirIno, extents, child, childBlock * _blockSize, 8, levelsBelow - 1, nodeBlocks, dirBlocks);
        }
    }
}

/// <summary>One directory entry: the name (UTF-8 decoded), its raw-byte key, the inode and the type byte.</summary>
public readonly record struct DirectoryEntry(string Name, string RawKey, uint Inode, DirEntryType Type);
