using System.Buffers.Binary;
using System.Text;
using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>Bits of the header/trailer <c>flags</c> word (formats doc §1.2). Readers test bits, never whole words.</summary>
[Flags]
public enum LsmtFlags : uint
{
    None = 0,

    /// <summary>Set in a header block, clear in a trailer.</summary>
    Header = 0x01,

    /// <summary>Set in a data file, clear in an index file.</summary>
    DataFile = 0x02,

    Sealed = 0x04,

    /// <summary>A sparse (single-file) writable layer.</summary>
    Sparse = 0x10,
}

/// <summary>
/// The 4096-byte LSMT header or trailer block (formats doc §1.2). Both have the same layout; the
/// <see cref="LsmtFlags.Header"/> bit tells them apart.
/// </summary>
public readonly record struct LsmtHeader(
    LsmtFlags Flags,
    ulong IndexOffset,
    ulong IndexSize,
    ulong VirtualSize,
    string Uuid,
    string ParentUuid,
    byte[] UserTag)
{
    public const int MagicOffset = 0;
    public const int Magic1Offset = 8;
    public const int SizeOffset = 24;
    public const int FlagsOffset = 28;
    public const int IndexOffsetOffset = 32;
    public const int IndexSizeOffset = 40;
    public const int VirtualSizeOffset = 48;
    public const int UuidOffset = 56;
    public const int UuidFieldLength = 37;
    public const int ParentUuidOffset = UuidOffset + UuidFieldLength;
    public const int ReservedOffset = ParentUuidOffset + UuidFieldLength;
    public const int VersionOffset = ReservedOffset + 2;
    public const int SubVersionOffset = VersionOffset + 1;
    public const int UserTagOffset = SubVersionOffset + 1;

    /// <summary>"LSMT\0\1\2\0".</summary>
    public static ReadOnlySpan<byte> Magic0 => [0x4C, 0x53, 0x4D, 0x54, 0x00, 0x01, 0x02, 0x00];

    /// <summary>The packed UUID {0xD2637E65, 0x4494, 0x4C08, 0xD2A2, C8 EC 4F CF AE 8A}.</summary>
    public static ReadOnlySpan<byte> Magic1 => [0x65, 0x7E, 0x63, 0xD2, 0x94, 0x44, 0x08, 0x4C, 0xA2, 0xD2, 0xC8, 0xEC, 0x4F, 0xCF, 0xAE, 0x8A];

    public bool IsHeader => (Flags & LsmtFlags.Header) != 0;

    public bool IsDataFile => (Flags & LsmtFlags.DataFile) != 0;

    public bool IsSealed => (Flags & LsmtFlags.Sealed) != 0;

    public bool IsSparse => (Flags & LsmtFlags.Sparse) != 0;

    /// <summary>The commit message as text (bytes up to the first NUL).</summary>
    public string UserTagText
    {
        get
        {
            var tag = UserTag ?? [];
            var end = Array.IndexOf(tag, (byte)0);
            return Encoding.UTF8.GetString(tag, 0, end < 0 ? tag.Length : end);
        }
    }

    /// <summary>Whether <paramref name="block"/> starts with both LSMT magics.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> block) =>
        block.Length >= 24 && block[..8].SequenceEqual(Magic0) && block.Slice(Magic1Offset, 16).SequenceEqual(Magic1);

    /// <summary>
    /// Parses a header/trailer block. Only the magics are required here; which flag bits must be set
    /// depends on where the block was found, so callers check them. <paramref name="fileOffset"/> is
    /// the block's absolute offset, for error messages.
    /// </summary>
    public static LsmtHeader Read(ReadOnlySpan<byte> block, long fileOffset, string what)
    {
        if (block.Length < LsmtConstants.HeaderBlockSize)
        {
            TurboOciFormatException.Throw(LsmtConstants.FormatName, what, fileOffset,
                $"the file ends inside the {LsmtConstants.HeaderBlockSize}-byte block (only {block.Length} bytes)");
        }

        if (!block[..8].SequenceEqual(Magic0))
        {
            TurboOciFormatException.Throw(LsmtConstants.FormatName, $"{what}.magic0", fileOffset, DescribeWrongMagic(block));
        }

        if (!block.Slice(Magic1Offset, 16).SequenceEqual(Magic1))
        {
            TurboOciFormatException.Throw(LsmtConstants.FormatName, $"{what}.magic1", fileOffset + Magic1Offset, "the second magic (format UUID) is wrong");
        }

        return new LsmtHeader(
            (LsmtFlags)BinaryPrimitives.ReadUInt32LittleEndian(block[FlagsOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(block[IndexOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(block[IndexSizeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(block[VirtualSizeOffset..]),
            ReadUuid(block.Slice(UuidOffset, UuidFieldLength)),
            ReadUuid(block.Slice(ParentUuidOffset, UuidFieldLength)),
            block.Slice(UserTagOffset, LsmtConstants.UserTagSize).ToArray());
    }

    /// <summary>Writes the whole 4096-byte block (zero padding included) into <paramref name="block"/>.</summary>
    public void Write(Span<byte> block)
    {
        if (block.Length < LsmtConstants.HeaderBlockSize)
        {
            throw new ArgumentException("an LSMT header block is 4096 bytes", nameof(block));
        }

        var tag = UserTag ?? [];
        if (tag.Length > LsmtConstants.UserTagSize)
        {
            throw new ArgumentException($"the user tag is {tag.Length} bytes; LSMT allows {LsmtConstants.UserTagSize}");
        }

        block[..LsmtConstants.HeaderBlockSize].Clear();
        Magic0.CopyTo(block);
        Magic1.CopyTo(block[Magic1Offset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(block[SizeOffset..], LsmtConstants.HeaderStructSize);
        BinaryPrimitives.WriteUInt32LittleEndian(block[FlagsOffset..], (uint)Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(block[IndexOffsetOffset..], IndexOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(block[IndexSizeOffset..], IndexSize);
        BinaryPrimitives.WriteUInt64LittleEndian(block[VirtualSizeOffset..], VirtualSize);
        WriteUuid(block.Slice(UuidOffset, UuidFieldLength), Uuid);
        WriteUuid(block.Slice(ParentUuidOffset, UuidFieldLength), ParentUuid);
        block[VersionOffset] = 1;
        block[SubVersionOffset] = 1;
        tag.CopyTo(block[UserTagOffset..]);
    }

    public byte[] ToArray()
    {
        var block = new byte[LsmtConstants.HeaderBlockSize];
        Write(block);
        return block;
    }

    private static string ReadUuid(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        var text = Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
        // A malformed UUID is only informational (overlaybd logs it and goes on); keep the text as found.
        return LsmtUuid.TryNormalize(text, out var normalized) ? normalized : text;
    }

    private static void WriteUuid(Span<byte> field, string uuid)
    {
        var text = string.IsNullOrEmpty(uuid) ? LsmtUuid.Null : LsmtUuid.Normalize(uuid);
        Encoding.ASCII.GetBytes(text, field);
        field[36] = 0;
    }

    private static string DescribeWrongMagic(ReadOnlySpan<byte> block)
    {
        if (block.Length >= 4 && block[..4].SequenceEqual("ZFil"u8))
        {
            return "this is a ZFile (compressed layer), not a bare LSMT file; open it through LayerBlob";
        }

        if (block.Length >= 263 && block.Slice(257, 5).SequenceEqual("ustar"u8))
        {
            return "this is a tar archive (a layer blob in its envelope), not a bare LSMT file; open it through LayerBlob";
        }

        if (block.Length >= 2 && block[0] == 0x1F && block[1] == 0x8B)
        {
            return "this is gzip data (an OCI tar.gz layer?), not an LSMT file";
        }

        return "not an LSMT file (magic \"LSMT\\0\\1\\2\\0\" missing)";
    }
}
