using System.Buffers.Binary;
using System.Text;
using TurboOci.Formats.Ext4.OnDisk;

namespace TurboOci.Formats.Ext4;

/// <summary>
/// Extended attributes: in the inode (after i_extra_isize) and in one xattr block (i_file_acl). Names
/// are stored as a prefix index plus suffix; entries are kept sorted the way the kernel's lookup expects.
/// POSIX ACLs ("system.posix_acl_*") are converted from the xattr wire format to ext4's compact format.
/// </summary>
public sealed partial class Ext4FileSystem
{
    private const uint XattrMagic = 0xEA020000;
    private const int XattrBlockHeaderSize = 32;
    private const int XattrBlockChecksumOffset = 16;
    private const int XattrEntryHeaderSize = 16;

    private static readonly (byte Index, string Prefix)[] s_xattrPrefixes =
    [
        (2, "system.posix_acl_access"),
        (3, "system.posix_acl_default"),
        (1, "user."),
        (4, "trusted."),
        (6, "security."),
        (7, "system."),
    ];

    /// <summary>All extended attributes of an inode, by full name.</summary>
    public SortedDictionary<string, byte[]> ReadXattrs(uint ino, Ext4Inode inode)
    {
        var result = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        var inInodeStart = Ext4Constants.GoodOldInodeSize + inode.ExtraIsize;
        if (inode.RecordSize > Ext4Constants.GoodOldInodeSize && inInodeStart + 4 <= inode.RecordSize
            && BinaryPrimitives.ReadUInt32LittleEndian(inode.Bytes[inInodeStart..]) == XattrMagic)
        {
            var region = inode.Bytes[(inInodeStart + 4)..].ToArray();
            ParseXattrEntries(region, 0, region, 0, ino, result);
        }

        if (inode.FileAcl != 0)
        {
            var block = ReadBlock(inode.FileAcl, $"inode {ino} xattr block");
            if (BinaryPrimitives.ReadUInt32LittleEndian(block) != XattrMagic || BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(8)) != 1)
            {
                Fail($"inode {ino} xattr block", inode.FileAcl * _blockSize, "bad xattr block header");
            }

            if (_metadataCsum)
            {
                var crc = Ext4Checksums.XattrBlock(_csumSeed, inode.FileAcl, block, XattrBlockChecksumOffset);
                if (crc != BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(XattrBlockChecksumOffset)))
                {
                    Fail($"inode {ino} xattr block checksum", inode.FileAcl * _blockSize + XattrBlockChecksumOffset, "checksum mismatch");
                }
            }

            ParseXattrEntries(block, XattrBlockHeaderSize, block, 0, ino, result);
        }

        return result;
    }

    private static void ParseXattrEntries(byte[] entries, int offset, byte[] values, int valueBase, uint ino, SortedDictionary<string, byte[]> result)
    {
        while (offset + 4 <= entries.Length && BinaryPrimitives.ReadUInt32LittleEndian(entries.AsSpan(offset)) != 0)
        {
            if (offset + XattrEntryHeaderSize > entries.Length)
            {
                Fail($"inode {ino} xattr entry", offset, "entry runs past its region");
            }

            var nameLength = entries[offset];
            var nameIndex = entries[offset + 1];
            var valueOffset = BinaryPrimitives.ReadUInt16LittleEndian(entries.AsSpan(offset + 2));
            var valueInode = BinaryPrimitives.ReadUInt32LittleEndian(entries.AsSpan(offset + 4));
            var valueSize = BinaryPrimitives.ReadUInt32LittleEndian(entries.AsSpan(offset + 8));
            if (offset + XattrEntryHeaderSize + nameLength > entries.Length || valueInode != 0
                || valueBase + valueOffset + (long)valueSize > values.Length)
            {
                Fail($"inode {ino} xattr entry", offset, "name or value lies outside its region (or uses ea_inode)");
            }

            var suffix = Encoding.UTF8.GetString(entries, offset + XattrEntryHeaderSize, nameLength);
            var prefix = s_xattrPrefixes.FirstOrDefault(p => p.Index == nameIndex).Prefix ?? $"unknown{nameIndex}.";
            var value = values.AsSpan(valueBase + valueOffset, (int)valueSize).ToArray();
            result[prefix + suffix] = nameIndex is 2 or 3 ? AclFromExt4(value) : value;
            offset += (XattrEntryHeaderSize + nameLength + 3) & ~3;
        }
    }

    /// <summary>Replaces all extended attributes of an inode: in the inode when they fit, else in one xattr block.</summary>
    internal void WriteXattrs(uint ino, Ext4Inode inode, IReadOnlyDictionary<string, byte[]> xattrs)
    {
        var encoded = xattrs.Select(kv => EncodeXattr(kv.Key, kv.Value))
            .OrderBy(e => e.Index).ThenBy(e => e.Suffix.Length).ThenBy(e => e.Suffix, ByteArrayComparer.Instance)
            .ToList();

        ReleaseXattrBlock(ino, inode);
        var inInodeStart = Ext4Constants.GoodOldInodeSize + inode.ExtraIsize;
        var inodeRegion = inode.RecordSize > Ext4Constants.GoodOldInodeSize ? inode.RecordSize - inInodeStart - 4 : 0;
        if (inodeRegion > 0)
        {
            inode.Bytes[inInodeStart..].Clear();
        }

        if (encoded.Count == 0)
        {
            return;
        }

        if (inodeRegion > 0 && TryLayoutXattrs(encoded, new byte[inodeRegion], 0, 0) is { } region)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(inode.Bytes[inInodeStart..], XattrMagic);
            region.CopyTo(inode.Bytes[(inInodeStart + 4)..]);
            return;
        }

        if (!_sb.HasCompat(CompatFeatures.ExtAttr))
        {
            throw new IOException("ext4: extended attributes do not fit the inode and the filesystem lacks ext_attr");
        }

        var block = new byte[_blockSize];
        if (TryLayoutXattrs(encoded, block, XattrBlockHeaderSize, 0) is null)
        {
            throw new IOException($"ext4: extended attributes of inode {ino} do not fit one {_blockSize}-byte block (ENOSPC)");
        }

        var location = AllocateBlock(_gdt.InodeTable((int)((ino - 1) / _sb.InodesPerGroup)));
        BinaryPrimitives.WriteUInt32LittleEndian(block, XattrMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), 1); // refcount
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(8), 1); // blocks
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(12), XattrBlockHash(block));
        if (_metadataCsum)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(XattrBlockChecksumOffset),
                Ext4Checksums.XattrBlock(_csumSeed, location, block, XattrBlockChecksumOffset));
        }

        WriteBlock(location, block);
        inode.FileAcl = location;
        AddInodeBlocks(inode, 1);
    }

    /// <summary>Drops the inode's reference to its xattr block, freeing the block when it was the last.</summary>
    private void ReleaseXattrBlock(uint ino, Ext4Inode inode)
    {
        var location = inode.FileAcl;
        if (location == 0)
        {
            return;
        }

        var block = ReadBlock(location, $"inode {ino} xattr block");
        var refcount = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(4));
        if (refcount > 1)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), refcount - 1);
            if (_metadataCsum)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(XattrBlockChecksumOffset),
                    Ext4Checksums.XattrBlock(_csumSeed, location, block, XattrBlockChecksumOffset));
            }

            WriteBlock(location, block);
        }
        else
        {
            FreeBlocks(location, 1);
        }

        inode.FileAcl = 0;
        AddInodeBlocks(inode, -1);
    }

    /// <summary>Whether ext4 has a namespace for this xattr name (user., trusted., security., system., POSIX ACLs).</summary>
    public static bool CanStoreXattr(string name) =>
        s_xattrPrefixes.Any(p => p.Index is 2 or 3 ? name == p.Prefix : name.StartsWith(p.Prefix, StringComparison.Ordinal) && name.Length > p.Prefix.Length);

    private sealed record EncodedXattr(byte Index, byte[] Suffix, byte[] Value);

    private static EncodedXattr EncodeXattr(string name, byte[] value)
    {
        foreach (var (index, prefix) in s_xattrPrefixes)
        {
            var isAcl = index is 2 or 3;
            if (isAcl ? name == prefix : name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length)
            {
                var suffix = Encoding.UTF8.GetBytes(name[prefix.Length..]);
                if (suffix.Length > 255)
                {
                    throw new ArgumentException($"xattr name '{name}' is longer than 255 bytes");
                }

                return new EncodedXattr(index, suffix, isAcl ? AclToExt4(value) : value);
            }
        }

        throw new ArgumentException($"xattr name '{name}' has no namespace ext4 can store (user., trusted., security., system.)");
    }

    /// <summary>
    /// Lays entries out from <paramref name="entryStart"/> upwards and values from the end downwards
    /// (value offsets relative to <paramref name="valueBase"/>). Null when they do not fit.
    /// </summary>
    private static byte[]? TryLayoutXattrs(List<EncodedXattr> entries, byte[] region, int entryStart, int valueBase)
    {
        var entryEnd = entryStart + entries.Sum(e => (XattrEntryHeaderSize + e.Suffix.Length + 3) & ~3) + 4;
        var valuesSize = entries.Sum(e => (e.Value.Length + 3) & ~3);
        if (entryEnd + valuesSize > region.Length)
        {
            return null;
        }

        var offset = entryStart;
        var valueEnd = region.Length;
        foreach (var e in entries)
        {
            var padded = (e.Value.Length + 3) & ~3;
            valueEnd -= padded;
            e.Value.CopyTo(region.AsSpan(valueEnd));
            region[offset] = (byte)e.Suffix.Length;
            region[offset + 1] = e.Index;
            BinaryPrimitives.WriteUInt16LittleEndian(region.AsSpan(offset + 2), (ushort)(e.Value.Length == 0 ? 0 : valueEnd - valueBase));
            BinaryPrimitives.WriteUInt32LittleEndian(region.AsSpan(offset + 4), 0);
            BinaryPrimitives.WriteUInt32LittleEndian(region.AsSpan(offset + 8), (uint)e.Value.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(region.AsSpan(offset + 12), XattrEntryHash(e.Suffix, region.AsSpan(valueEnd, padded)));
            e.Suffix.CopyTo(region.AsSpan(offset + XattrEntryHeaderSize));
            offset += (XattrEntryHeaderSize + e.Suffix.Length + 3) & ~3;
        }

        return region;
    }

    /// <summary>ext2fs_ext_attr_hash_entry: rotate-xor over the name bytes, then over the value's 32-bit words.</summary>
    private static uint XattrEntryHash(ReadOnlySpan<byte> name, ReadOnlySpan<byte> paddedValue)
    {
        uint hash = 0;
        foreach (var c in name)
        {
            hash = (hash << 5) ^ (hash >> 27) ^ c;
        }

        for (var i = 0; i + 4 <= paddedValue.Length; i += 4)
        {
            hash = (hash << 16) ^ (hash >> 16) ^ BinaryPrimitives.ReadUInt32LittleEndian(paddedValue[i..]);
        }

        return hash;
    }

    /// <summary>The block header hash (ext2fs_ext_attr_block_rehash): a rotate-xor of the entry hashes.</summary>
    private static uint XattrBlockHash(byte[] block)
    {
        uint hash = 0;
        for (var offset = XattrBlockHeaderSize; BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(offset)) != 0;)
        {
            var entryHash = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(offset + 12));
            if (entryHash == 0)
            {
                return 0;
            }

            hash = (hash << 16) ^ (hash >> 16) ^ entryHash;
            offset += (XattrEntryHeaderSize + block[offset] + 3) & ~3;
        }

        return hash;
    }

    // POSIX ACL tags: entries for a named user (2) or group (8) carry an id.
    private const ushort AclUser = 0x02;
    private const ushort AclGroup = 0x08;

    /// <summary>posix_acl_xattr (version 2, 8-byte entries) to ext4_acl (version 1, 4- or 8-byte entries).</summary>
    private static byte[] AclToExt4(byte[] xattr)
    {
        if (xattr.Length < 4 || (xattr.Length - 4) % 8 != 0 || BinaryPrimitives.ReadUInt32LittleEndian(xattr) != 2)
        {
            throw new ArgumentException("POSIX ACL xattr value is not version 2 with 8-byte entries");
        }

        using var output = new MemoryStream();
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, 1);
        output.Write(buffer[..4]);
        for (var i = 4; i < xattr.Length; i += 8)
        {
            var tag = BinaryPrimitives.ReadUInt16LittleEndian(xattr.AsSpan(i));
            xattr.AsSpan(i, tag is AclUser or AclGroup ? 8 : 4).CopyTo(buffer);
            output.Write(buffer[..(tag is AclUser or AclGroup ? 8 : 4)]);
        }

        return output.ToArray();
    }

    private static byte[] AclFromExt4(byte[] ext4)
    {
        if (ext4.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(ext4) != 1)
        {
            return ext4;
        }

        using var output = new MemoryStream();
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, 2);
        output.Write(buffer[..4]);
        for (var i = 4; i + 4 <= ext4.Length;)
        {
            var tag = BinaryPrimitives.ReadUInt16LittleEndian(ext4.AsSpan(i));
            var size = tag is AclUser or AclGroup ? 8 : 4;
            if (i + size > ext4.Length)
            {
                break;
            }

            buffer.Clear();
            ext4.AsSpan(i, size).CopyTo(buffer);
            if (size == 4)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(buffer[4..], uint.MaxValue);
            }

            output.Write(buffer);
            i += size;
        }

        return output.ToArray();
    }

    private sealed class ByteArrayComparer : IComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
