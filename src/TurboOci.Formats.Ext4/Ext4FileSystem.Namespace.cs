using System.Buffers.Binary;
using System.Text;
using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>
/// The namespace layer: lookups (symlinks are never followed), creating every file type, hard links,
/// removing files and whole trees, attributes and reading contents. Parent directory times are left
/// as they are: callers that care (the OCI applier) set them explicitly.
/// </summary>
public sealed partial class Ext4FileSystem
{
    private const int MaxTreeDepth = 4096;

    /// <summary>Looks up a path from the root, never following symlinks. Null when any component is missing.</summary>
    public uint? TryLookup(string path)
    {
        var ino = Ext4Constants.RootInode;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (ReadInode(ino).Type != InodeType.Directory)
            {
                return null;
            }

            var hit = LookupKey(ino, Key(part));
            if (hit is null)
            {
                return null;
            }

            ino = hit.Value.Inode;
        }

        return ino;
    }

    public uint Lookup(string path) => TryLookup(path) ?? throw new FileNotFoundException($"ext4: no such file: {path}");

    /// <summary>Looks up one name in a directory.</summary>
    public uint? TryLookup(uint dirIno, string name) => LookupKey(dirIno, Key(name))?.Inode;

    internal static string Key(string name) => NameKey(Encoding.UTF8.GetBytes(name));

    public uint CreateDirectory(uint parent, string name, InodeAttributes attributes)
    {
        var key = PrepareCreate(parent, name);
        var ino = AllocateInode(directory: true, parent);
        WriteNewDirectory(ino, parent, attributes);
        AddEntry(parent, key, ino, DirEntryType.Directory);
        AdjustDirectoryLinks(parent, +1);
        MaybeFlush();
        return ino;
    }

    /// <summary>Writes a fresh directory inode with one block holding "." and "..".</summary>
    private void WriteNewDirectory(uint ino, uint parent, InodeAttributes attributes)
    {
        var inode = NewInode(InodeType.Directory, attributes);
        var block = AllocateBlock(_gdt.InodeTable((int)((ino - 1) / _sb.InodesPerGroup)));
        AddInodeBlocks(inode, 1);
        WriteExtentTree(ino, inode, [new Extent(0, 1, block, false)]);
        inode.Size = _blockSize;
        inode.LinksCount = 2;
        WriteInode(ino, inode);
        WriteDirectoryBlock(ino, inode, block, NewDirectoryBlock(ino, parent));
    }

    /// <summary>
    /// Creates a regular file of <paramref name="size"/> bytes and allocates blocks for
    /// <paramref name="dataRanges"/> (default: the whole file; other ranges are holes). Nothing is written
    /// to the data blocks: the caller writes them (copied mode) or maps them elsewhere (mapped mode).
    /// </summary>
    public (uint Inode, List<DataPlacement> Placements) CreateFileAllocated(
        uint parent, string name, InodeAttributes attributes, long size, IReadOnlyList<ByteRange>? dataRanges = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var key = PrepareCreate(parent, name);
        var ino = AllocateInode(directory: false, parent);
        var inode = NewInode(InodeType.Regular, attributes);
        inode.LinksCount = 1;
        inode.Size = size;
        var extents = new List<Extent>();
        var ranges = dataRanges ?? [new ByteRange(0, size)];
        foreach (var range in ranges)
        {
            if (range.Offset < 0 || range.Length < 0 || range.Offset > size - range.Length)
            {
                throw new ArgumentException($"data range {range} lies outside the {size}-byte file", nameof(dataRanges));
            }
        }

        if (size > int.MaxValue && !_sb.HasRoCompat(RoCompatFeatures.LargeFile))
        {
            _sb.RoCompatFeatures |= RoCompatFeatures.LargeFile; // files of 2 GiB and more need large_file
            _superDirty = true;
        }

        var placements = AllocateData(inode, ranges, extents, _gdt.InodeTable((int)((ino - 1) / _sb.InodesPerGroup)));
        WriteExtentTree(ino, inode, extents);
        WriteInode(ino, inode);
        AddEntry(parent, key, ino, DirEntryType.Regular);
        MaybeFlush();
        return (ino, placements);
    }

    /// <summary>Creates a regular file holding <paramref name="size"/> bytes read from <paramref name="content"/> (copied mode).</summary>
    public uint CreateFile(uint parent, string name, InodeAttributes attributes, Stream content, long size)
    {
        var (ino, placements) = CreateFileAllocated(parent, name, attributes, size);
        var buffer = new byte[Math.Min(1 << 20, Math.Max(_blockSize, size))];
        foreach (var p in placements)
        {
            for (long done = 0; done < p.Length;)
            {
                var chunk = (int)Math.Min(buffer.Length, p.Length - done);
                var fromFile = (int)Math.Clamp(size - (p.FileOffset + done), 0, chunk);
                content.ReadExactly(buffer, 0, fromFile);
                buffer.AsSpan(fromFile, chunk - fromFile).Clear();
                _device.WriteAt(p.DeviceOffset + done, buffer.AsSpan(0, chunk));
                done += chunk;
            }
        }

        return ino;
    }

    public uint CreateFile(uint parent, string name, InodeAttributes attributes, ReadOnlySpan<byte> content)
    {
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        return CreateFile(parent, name, attributes, stream, content.Length);
    }

    /// <summary>Creates a sparse file: only the given segments hold data, everything else is a hole.</summary>
    public uint CreateSparseFile(uint parent, string name, InodeAttributes attributes, long size, IReadOnlyList<(long Offset, byte[] Data)> segments)
    {
        var ranges = segments.Select(s => new ByteRange(s.Offset, s.Data.Length)).ToList();
        var (ino, placements) = CreateFileAllocated(parent, name, attributes, size, ranges);
        foreach (var p in placements)
        {
            var block = new byte[p.Length];
            foreach (var (offset, data) in segments)
            {
                var from = Math.Max(offset, p.FileOffset);
                var to = Math.Min(offset + data.Length, p.FileOffset + p.Length);
                if (to > from)
                {
                    data.AsSpan((int)(from - offset), (int)(to - from)).CopyTo(block.AsSpan((int)(from - p.FileOffset)));
                }
            }

            _device.WriteAt(p.DeviceOffset, block);
        }

        return ino;
    }

    public uint CreateSymlink(uint parent, string name, string target, InodeAttributes attributes)
    {
        var targetBytes = Encoding.UTF8.GetBytes(target);
        if (targetBytes.Length == 0 || targetBytes.Length >= _blockSize || targetBytes.Contains((byte)0))
        {
            throw new ArgumentException($"symlink target of {targetBytes.Length} bytes is empty, too long or holds NUL", nameof(target));
        }

        var key = PrepareCreate(parent, name);
        var ino = AllocateInode(directory: false, parent);
        var inode = NewInode(InodeType.Symlink, attributes with { Mode = 0x1FF });
        inode.LinksCount = 1;
        inode.Size = targetBytes.Length;
        if (targetBytes.Length <= Ext4Constants.FastSymlinkMaxLength)
        {
            targetBytes.CopyTo(inode.BlockArea);
        }
        else
        {
            var block = AllocateBlock(_gdt.InodeTable((int)((ino - 1) / _sb.InodesPerGroup)));
            AddInodeBlocks(inode, 1);
            WriteExtentTree(ino, inode, [new Extent(0, 1, block, false)]);
            var data = new byte[_blockSize];
            targetBytes.CopyTo(data, 0);
            _device.WriteAt(block * _blockSize, data);
        }

        WriteInode(ino, inode);
        AddEntry(parent, key, ino, DirEntryType.Symlink);
        MaybeFlush();
        return ino;
    }

    /// <summary>Creates a character or block device, a FIFO or a socket.</summary>
    public uint CreateSpecial(uint parent, string name, InodeType type, uint major, uint minor, InodeAttributes attributes)
    {
        if (type is not (InodeType.CharDevice or InodeType.BlockDevice or InodeType.Fifo or InodeType.Socket))
        {
            throw new ArgumentException($"{type} is not a special file type", nameof(type));
        }

        var key = PrepareCreate(parent, name);
        var ino = AllocateInode(directory: false, parent);
        var inode = NewInode(type, attributes);
        inode.LinksCount = 1;
        if (type is InodeType.CharDevice or InodeType.BlockDevice)
        {
            // The kernel's old 16-bit encoding when both numbers fit a byte, else the new 32-bit one in i_block[1].
            if (major < 256 && minor < 256)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(inode.BlockArea, (major << 8) | minor);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(inode.BlockArea[4..], (minor & 0xFF) | (major << 8) | ((minor & ~0xFFu) << 12));
            }
        }

        WriteInode(ino, inode);
        AddEntry(parent, key, ino, InodeTypes.ToDirEntryType(type));
        MaybeFlush();
        return ino;
    }

    /// <summary>The (major, minor) numbers of a device inode.</summary>
    public static (uint Major, uint Minor) DeviceNumbers(Ext4Inode inode)
    {
        var old = BinaryPrimitives.ReadUInt32LittleEndian(inode.BlockArea);
        if (old != 0)
        {
            return ((old >> 8) & 0xFF, old & 0xFF);
        }

        var dev = BinaryPrimitives.ReadUInt32LittleEndian(inode.BlockArea[4..]);
        return ((dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00));
    }

    /// <summary>Adds a hard link to an existing non-directory inode.</summary>
    public void CreateHardLink(uint parent, string name, uint target)
    {
        var inode = ReadInode(target);
        if (inode.Type == InodeType.Directory)
        {
            throw new IOException("ext4: hard links to directories are not allowed (EPERM)");
        }

        if (inode.LinksCount >= Ext4Constants.MaxLinkCount)
        {
            throw new IOException($"ext4: inode {target} has too many links (EMLINK)");
        }

        var key = PrepareCreate(parent, name);
        inode.LinksCount++;
        inode.Ctime = Clock();
        WriteInode(target, inode);
        AddEntry(parent, key, target, InodeTypes.ToDirEntryType(inode.Type));
        MaybeFlush();
    }

    /// <summary>Removes a name: a file's link (freeing the inode with its last link) or a whole directory tree.</summary>
    public bool Remove(uint parent, string name)
    {
        var removed = RemoveKey(parent, Key(name), 0);
        MaybeFlush();
        return removed;
    }

    /// <summary>Removes a listed entry by its raw name (exact even for names that are not valid UTF-8).</summary>
    public bool Remove(uint parent, DirectoryEntry entry)
    {
        var removed = RemoveKey(parent, entry.RawKey, 0);
        MaybeFlush();
        return removed;
    }

    private bool RemoveKey(uint parent, string key, int depth)
    {
        if (depth > MaxTreeDepth)
        {
            throw new IOException("ext4: directory tree too deep to remove");
        }

        var hit = LookupKey(parent, key);
        if (hit is null)
        {
            return false;
        }

        var ino = hit.Value.Inode;
        var inode = ReadInode(ino);
        if (inode.Type == InodeType.Directory)
        {
            foreach (var child in ListDirectory(ino))
            {
                RemoveKey(ino, child.RawKey, depth + 1);
            }

            RemoveEntry(parent, key);
            AdjustDirectoryLinks(parent, -1);
            inode = ReadInode(ino);
            ReleaseInode(ino, inode);
            _dirIndexes.Remove(ino);
            return true;
        }

        RemoveEntry(parent, key);
        if (inode.LinksCount > 1)
        {
            inode.LinksCount--;
            inode.Ctime = Clock();
            WriteInode(ino, inode);
        }
        else
        {
            ReleaseInode(ino, inode);
        }

        return true;
    }

    /// <summary>Frees an inode's blocks, xattr block and the inode itself.</summary>
    private void ReleaseInode(uint ino, Ext4Inode inode)
    {
        var isDirectory = inode.Type == InodeType.Directory;
        var fastSymlink = inode.Type == InodeType.Symlink && !inode.Flags.HasFlag(InodeFlags.Extents);
        ReleaseXattrBlock(ino, inode);
        if (!fastSymlink && inode.Type is InodeType.Regular or InodeType.Directory or InodeType.Symlink)
        {
            FreeInodeBlocks(ino, inode);
        }

        var cleared = new Ext4Inode(new byte[inode.RecordSize]);
        cleared.ExtraIsize = inode.ExtraIsize;
        cleared.Generation = inode.Generation;
        cleared.Dtime = (uint)Clock().Seconds;
        WriteInode(ino, cleared);
        FreeInode(ino, isDirectory);
    }

    /// <summary>Adjusts a directory's link count for a subdirectory added or removed (dir_nlink caps it at 1).</summary>
    private void AdjustDirectoryLinks(uint dirIno, int delta)
    {
        var dir = ReadInode(dirIno);
        if (dir.LinksCount == 1 && _sb.HasRoCompat(RoCompatFeatures.DirNlink))
        {
            return;
        }

        var links = dir.LinksCount + delta;
        if (links >= Ext4Constants.MaxLinkCount)
        {
            if (!_sb.HasRoCompat(RoCompatFeatures.DirNlink))
            {
                throw new IOException($"ext4: directory {dirIno} has too many subdirectories (EMLINK)");
            }

            links = 1;
        }

        dir.LinksCount = (ushort)links;
        WriteInode(dirIno, dir);
    }

    private string PrepareCreate(uint parent, string name)
    {
        EnsureWritable();
        var key = Key(name);
        ValidateName(NameBytes(key));
        RequireDirectory(parent, ReadInode(parent));
        if (LookupKey(parent, key) is not null)
        {
            throw new IOException($"ext4: '{name}' already exists in directory {parent} (EEXIST)");
        }

        return key;
    }

    /// <summary>Sets mode bits, owner and times (the file type is kept).</summary>
    public void SetAttributes(uint ino, InodeAttributes attributes)
    {
        var inode = ReadInode(ino);
        ApplyAttributes(inode, inode.Type == InodeType.Symlink ? attributes with { Mode = 0x1FF } : attributes);
        WriteInode(ino, inode);
    }

    /// <summary>Replaces all extended attributes of an inode.</summary>
    public void SetXattrs(uint ino, IReadOnlyDictionary<string, byte[]> xattrs)
    {
        var inode = ReadInode(ino);
        WriteXattrs(ino, inode, xattrs);
        WriteInode(ino, inode);
        MaybeFlush();
    }

    /// <summary>Copies a regular file's bytes (holes read as zeros) to <paramref name="destination"/>.</summary>
    public void ReadFile(uint ino, Stream destination)
    {
        var inode = ReadInode(ino);
        if (inode.Type != InodeType.Regular)
        {
            throw new IOException($"ext4: inode {ino} is not a regular file");
        }

        var (extents, _) = ReadExtentTree(ino, inode);
        var buffer = new byte[_blockSize];
        var size = inode.Size;
        for (long offset = 0; offset < size; offset += _blockSize)
        {
            var physical = MapBlock(extents, offset / _blockSize);
            if (physical < 0)
            {
                Array.Clear(buffer);
            }
            else if (_device.ReadAt(physical * _blockSize, buffer) != _blockSize)
            {
                Fail($"inode {ino} data", physical * _blockSize, "the device ends inside a data block");
            }

            destination.Write(buffer, 0, (int)Math.Min(_blockSize, size - offset));
        }
    }

    public byte[] ReadFile(uint ino)
    {
        using var stream = new MemoryStream();
        ReadFile(ino, stream);
        return stream.ToArray();
    }

    public string ReadSymlink(uint ino)
    {
        var inode = ReadInode(ino);
        if (inode.Type != InodeType.Symlink)
        {
            throw new IOException($"ext4: inode {ino} is not a symlink");
        }

        var size = inode.Size;
        if (size <= 0 || size >= _blockSize)
        {
            Fail($"inode {ino}.i_size", InodeByteOffset(ino) + 0x04, $"symlink length {size} is out of range");
        }

        if (!inode.Flags.HasFlag(InodeFlags.Extents))
        {
            if (size > Ext4Constants.FastSymlinkMaxLength)
            {
                Fail($"inode {ino}.i_size", InodeByteOffset(ino) + 0x04, "fast symlink longer than i_block");
            }

            return Encoding.UTF8.GetString(inode.BlockArea[..(int)size]);
        }

        var (extents, _) = ReadExtentTree(ino, inode);
        var physical = MapBlock(extents, 0);
        if (physical < 0)
        {
            Fail($"inode {ino}.i_block", InodeByteOffset(ino) + 0x28, "slow symlink without a data block");
        }

        var data = new byte[_blockSize];
        _device.ReadExactlyAt(physical * _blockSize, data);
        return Encoding.UTF8.GetString(data, 0, (int)size);
    }
}
