using System.Buffers.Binary;
using System.Text;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.Tar;

/// <summary>Field offsets and lengths of the 512-byte ustar header.</summary>
internal static class TarFields
{
    public const int BlockSize = 512;
    public const int Name = 0, NameLength = 100;
    public const int Mode = 100, ModeLength = 8;
    public const int Uid = 108, UidLength = 8;
    public const int Gid = 116, GidLength = 8;
    public const int Size = 124, SizeLength = 12;
    public const int Mtime = 136, MtimeLength = 12;
    public const int Checksum = 148, ChecksumLength = 8;
    public const int TypeFlag = 156;
    public const int LinkName = 157, LinkNameLength = 100;
    public const int Magic = 257, MagicLength = 6;
    public const int DevMajor = 329, DevMajorLength = 8;
    public const int DevMinor = 337, DevMinorLength = 8;
    public const int Prefix = 345, PrefixLength = 155;
}

/// <summary>One parsed tar header block (ustar, GNU or v7), before PAX/GNU long-name overrides.</summary>
public readonly record struct TarHeader(
    byte[] Name,
    uint Mode,
    long Uid,
    long Gid,
    long Size,
    long Mtime,
    byte TypeFlag,
    byte[] LinkName,
    uint DevMajor,
    uint DevMinor)
{
    public const string FormatName = "tar";

    /// <summary>Whether the block is all zeros (an end-of-archive marker).</summary>
    public static bool IsZeroBlock(ReadOnlySpan<byte> block) => !block.ContainsAnyExcept((byte)0);

    /// <summary>Parses a header block at absolute stream offset <paramref name="offset"/>, checksum first.</summary>
    public static TarHeader Parse(ReadOnlySpan<byte> block, long offset)
    {
        var stored = ParseNumber(block, TarFields.Checksum, TarFields.ChecksumLength, offset, "chksum");
        long unsigned = 0, signed = 0;
        for (var i = 0; i < TarFields.BlockSize; i++)
        {
            var b = i is >= TarFields.Checksum and < TarFields.Checksum + TarFields.ChecksumLength ? (byte)' ' : block[i];
            unsigned += b;
            signed += (sbyte)b;
        }

        if (stored != unsigned && stored != signed)
        {
            var hint = block[0] == 0x1F && block[1] == 0x8B ? " (this looks like gzip: decompress first)" : "";
            TurboOciFormatException.Throw(FormatName, "header.chksum", offset + TarFields.Checksum,
                $"stored {stored}, computed {unsigned}: not a tar header{hint}");
        }

        var name = CString(block.Slice(TarFields.Name, TarFields.NameLength));
        var magic = block.Slice(TarFields.Magic, TarFields.MagicLength);
        if (magic.SequenceEqual("ustar\0"u8))
        {
            // POSIX ustar: a non-empty prefix is the leading part of the path (GNU tar uses the field otherwise).
            var prefix = CString(block.Slice(TarFields.Prefix, TarFields.PrefixLength));
            if (prefix.Length > 0)
            {
                name = [.. prefix, (byte)'/', .. name];
            }
        }

        return new TarHeader(
            name,
            (uint)ParseNumber(block, TarFields.Mode, TarFields.ModeLength, offset, "mode"),
            ParseNumber(block, TarFields.Uid, TarFields.UidLength, offset, "uid"),
            ParseNumber(block, TarFields.Gid, TarFields.GidLength, offset, "gid"),
            ParseNumber(block, TarFields.Size, TarFields.SizeLength, offset, "size"),
            ParseNumber(block, TarFields.Mtime, TarFields.MtimeLength, offset, "mtime", allowNegative: true),
            block[TarFields.TypeFlag],
            CString(block.Slice(TarFields.LinkName, TarFields.LinkNameLength)),
            (uint)ParseNumber(block, TarFields.DevMajor, TarFields.DevMajorLength, offset, "devmajor"),
            (uint)ParseNumber(block, TarFields.DevMinor, TarFields.DevMinorLength, offset, "devminor"));
    }

    private static byte[] CString(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return (end < 0 ? field : field[..end]).ToArray();
    }

    /// <summary>An octal field (spaces and NULs around the digits allowed) or a GNU base-256 field.</summary>
    private static long ParseNumber(ReadOnlySpan<byte> block, int at, int length, long offset, string field, bool allowNegative = false)
    {
        var span = block.Slice(at, length);
        if ((span[0] & 0x80) != 0)
        {
            // GNU base-256: marker byte 0x80, then a big-endian value; only non-negative values of up to 63 bits.
            var digits = span[1..];
            var excess = Math.Max(0, digits.Length - 8);
            if (span[0] != 0x80 || digits[..excess].ContainsAnyExcept((byte)0) || (digits.Length >= 8 && (digits[excess] & 0x80) != 0))
            {
                TurboOciFormatException.Throw(FormatName, "header." + field, offset + at, "base-256 value out of range");
            }

            long number = 0;
            foreach (var b in digits[excess..])
            {
                number = (number << 8) | b;
            }

            return number;
        }

        var trimmed = span.Trim((byte)' ').TrimEnd((byte)0).Trim((byte)' ');
        long value = 0;
        foreach (var c in trimmed)
        {
            if ((uint)(c - '0') >= 8)
            {
                TurboOciFormatException.Throw(FormatName, "header." + field, offset + at,
                    $"'{Encoding.ASCII.GetString(span).TrimEnd('\0')}' is not an octal number");
            }

            value = checked(value * 8 + (c - '0'));
        }

        if (value < 0 && !allowNegative)
        {
            TurboOciFormatException.Throw(FormatName, "header." + field, offset + at, "negative value");
        }

        return value;
    }
}
