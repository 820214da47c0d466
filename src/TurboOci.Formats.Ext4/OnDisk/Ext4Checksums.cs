using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>
/// The checksums ext4 keeps, as e2fsprogs lib/ext2fs/csum.c defines them. metadata_csum uses the raw
/// CRC-32C (no pre/post inversion, seeded with crc32c(~0, uuid)), which is exactly <see cref="Crc32C"/>;
/// uninit_bg (gdt_csum) uses the ANSI CRC-16 (reflected 0xA001) seeded with ~0.
/// </summary>
public static class Ext4Checksums
{
    private static readonly ushort[] s_crc16Table = BuildCrc16Table();

    public static ushort Crc16(ushort crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = (ushort)((crc >> 8) ^ s_crc16Table[(crc ^ b) & 0xFF]);
        }

        return crc;
    }

    /// <summary>The checksum of group descriptor <paramref name="group"/> (bg_checksum).</summary>
    public static ushort GroupDescriptor(Superblock sb, uint seed, int group, ReadOnlySpan<byte> descriptor)
    {
        Span<byte> groupLe = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(groupLe, (uint)group);
        if (sb.HasMetadataChecksums)
        {
            Span<byte> copy = stackalloc byte[descriptor.Length];
            descriptor.CopyTo(copy);
            copy.Slice(GroupDescriptorFields.Checksum, 2).Clear();
            var crc = Crc32C.Compute(seed, groupLe);
            return (ushort)Crc32C.Compute(crc, copy);
        }

        var crc16 = Crc16(0xFFFF, sb.Uuid);
        crc16 = Crc16(crc16, groupLe);
        crc16 = Crc16(crc16, descriptor[..GroupDescriptorFields.Checksum]);
        return Crc16(crc16, descriptor[(GroupDescriptorFields.Checksum + 2)..]);
    }

    /// <summary>crc32c(seed, inode number, generation, ...): the prefix every per-inode checksum shares.</summary>
    public static uint InodePrefix(uint seed, uint inode, uint generation)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, inode);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[4..], generation);
        return Crc32C.Compute(seed, buffer);
    }

    /// <summary>The xattr block checksum: crc32c(seed, block number as le64, block with h_checksum zeroed).</summary>
    public static uint XattrBlock(uint seed, long blockNumber, ReadOnlySpan<byte> block, int checksumOffset)
    {
        Span<byte> number = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(number, blockNumber);
        var crc = Crc32C.Compute(seed, number);
        crc = Crc32C.Compute(crc, block[..checksumOffset]);
        crc = Crc32C.Compute(crc, [0, 0, 0, 0]);
        return Crc32C.Compute(crc, block[(checksumOffset + 4)..]);
    }

    private static ushort[] BuildCrc16Table()
    {
        var table = new ushort[256];
        for (var i = 0; i < 256; i++)
        {
            var c = (ushort)i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? (ushort)((c >> 1) ^ 0xA001) : (ushort)(c >> 1);
            }

            table[i] = c;
        }

        return table;
    }
}
