using System.Buffers;
using System.Globalization;
using System.Text;

namespace TurboOci.Testing.Tar;

/// <summary>
/// Writes tar entries as ustar headers, with PAX extended headers (long or non-ASCII names, big numbers,
/// xattrs) or GNU <c>././@LongLink</c> entries where an entry asks for them. Written independently of any
/// tar library so the tests can exercise exactly the encodings real layers contain; GNU tar, umoci and
/// skopeo read the result in the self-tests.
/// </summary>
public sealed class TarStreamWriter
{
    public const int BlockSize = 512;

    // ustar header field positions and lengths (POSIX.1-2001).
    private static class Field
    {
        public const int Name = 0, NameLength = 100;
        public const int Mode = Name + NameLength, ModeLength = 8;
        public const int Uid = Mode + ModeLength, UidLength = 8;
        public const int Gid = Uid + UidLength, GidLength = 8;
        public const int Size = Gid + GidLength, SizeLength = 12;
        public const int Mtime = Size + SizeLength, MtimeLength = 12;
        public const int Checksum = Mtime + MtimeLength, ChecksumLength = 8;
        public const int TypeFlag = Checksum + ChecksumLength;
        public const int LinkName = TypeFlag + 1, LinkNameLength = 100;
        public const int Magic = LinkName + LinkNameLength, MagicLength = 6;
        public const int Version = Magic + MagicLength, VersionLength = 2;
        public const int UserName = Version + VersionLength, UserNameLength = 32;
        public const int GroupName = UserName + UserNameLength, GroupNameLength = 32;
        public const int DevMajor = GroupName + GroupNameLength, DevMajorLength = 8;
        public const int DevMinor = DevMajor + DevMajorLength, DevMinorLength = 8;
        public const int Prefix = DevMinor + DevMinorLength, PrefixLength = 155;
    }

    private const string GnuLongLinkName = "././@LongLink";

    private readonly Stream _output;
    private readonly string _namePrefix;

    public TarStreamWriter(Stream output, string namePrefix = "")
    {
        _output = output;
        _namePrefix = namePrefix;
    }

    /// <summary>Bytes written so far.</summary>
    public long Position { get; private set; }

    /// <summary>Writes one entry: any PAX or GNU long-name entries, its header, then its data padded to 512.</summary>
    public void Write(LayerEntry entry)
    {
        var name = _namePrefix + entry.Path + (entry.Kind == TarEntryKind.Directory ? "/" : "");
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var linkBytes = entry.LinkTarget is null
            ? []
            : Encoding.UTF8.GetBytes(entry.Kind == TarEntryKind.Hardlink ? _namePrefix + entry.LinkTarget : entry.LinkTarget);
        var gnu = entry.NameEncoding == TarNameEncoding.GnuLongLink;
        var pax = new List<(string Key, byte[] Value)>();

        var ustarName = PlaceName(entry, nameBytes, "path", pax, gnu ? 'L' : null);
        var ustarLink = linkBytes.Length == 0 ? default : PlaceLink(entry, linkBytes, pax, gnu ? 'K' : null);

        AddNumberIfTooBig(pax, "size", entry.Size, Field.SizeLength);
        AddNumberIfTooBig(pax, "uid", entry.Uid, Field.UidLength);
        AddNumberIfTooBig(pax, "gid", entry.Gid, Field.GidLength);
        AddNumberIfTooBig(pax, "mtime", entry.Mtime, Field.MtimeLength);
        foreach (var (xattrName, value) in entry.Xattrs.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            pax.Add(("SCHILY.xattr." + xattrName, value));
        }

        if (pax.Count > 0)
        {
            var records = EncodePaxRecords(pax);
            var paxName = Truncate(Encoding.UTF8.GetBytes(_namePrefix + "PaxHeaders/" + AsciiOnly(entry.Name)), Field.NameLength);
            WriteHeaderBlock(paxName, default, 'x', TarLayerBuilder.ParseMode("644"), 0, 0, records.Length, entry.Mtime, 0, 0, gnu: false);
            WriteData(new MemoryStream(records), records.Length);
        }

        WriteHeaderBlock(ustarName.Name, ustarName.Prefix, TypeFlag(entry.Kind), entry.Mode, entry.Uid, entry.Gid, entry.Size,
            entry.Mtime, entry.DevMajor, entry.DevMinor, gnu, ustarLink.Name);
        if (entry.Content is not null)
        {
            using var data = entry.Content.Open();
            WriteData(data, entry.Content.Length);
        }
    }

    /// <summary>Writes the end-of-archive marker: two zero blocks.</summary>
    public void Finish()
    {
        _output.Write(new byte[2 * BlockSize]);
        Position += 2 * BlockSize;
    }

    private static char TypeFlag(TarEntryKind kind) => kind switch
    {
        TarEntryKind.File => '0',
        TarEntryKind.Hardlink => '1',
        TarEntryKind.Symlink => '2',
        TarEntryKind.CharDevice => '3',
        TarEntryKind.BlockDevice => '4',
        TarEntryKind.Directory => '5',
        TarEntryKind.Fifo => '6',
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    // Decides where a name goes: the ustar name (+ prefix) fields, a PAX record, or a GNU long-name entry
    // written right now (before the header it describes).
    private (byte[] Name, byte[]? Prefix) PlaceName(LayerEntry entry, byte[] nameBytes, string paxKey, List<(string, byte[])> pax, char? gnuType)
    {
        var ascii = nameBytes.All(b => b < 0x80);
        switch (entry.NameEncoding)
        {
            case TarNameEncoding.Auto when ascii && TrySplitUstar(nameBytes, out var split):
                return split;
            case TarNameEncoding.RawUtf8 when TrySplitUstar(nameBytes, out var split):
                return split;
            case TarNameEncoding.RawUtf8:
                throw new ArgumentException($"{entry.Path} does not fit the ustar name fields; use another encoding");
            case TarNameEncoding.GnuLongLink when nameBytes.Length <= Field.NameLength:
                return (nameBytes, null);
            case TarNameEncoding.GnuLongLink:
                WriteGnuLongLink(gnuType!.Value, nameBytes);
                return (Truncate(nameBytes, Field.NameLength), null);
            default:
                pax.Add((paxKey, nameBytes));
                return (Truncate(Encoding.UTF8.GetBytes(AsciiOnly(Encoding.UTF8.GetString(nameBytes))), Field.NameLength), null);
        }
    }

    private (byte[] Name, byte[]? Prefix) PlaceLink(LayerEntry entry, byte[] linkBytes, List<(string, byte[])> pax, char? gnuType)
    {
        var ascii = linkBytes.All(b => b < 0x80);
        var fits = linkBytes.Length <= Field.LinkNameLength;
        switch (entry.NameEncoding)
        {
            case TarNameEncoding.Auto when ascii && fits:
            case TarNameEncoding.RawUtf8 when fits:
            case TarNameEncoding.GnuLongLink when fits:
                return (linkBytes, null);
            case TarNameEncoding.RawUtf8:
                throw new ArgumentException($"the link target of {entry.Path} does not fit the ustar field; use another encoding");
            case TarNameEncoding.GnuLongLink:
                WriteGnuLongLink(gnuType!.Value, linkBytes);
                return (Truncate(linkBytes, Field.LinkNameLength), null);
            default:
                pax.Add(("linkpath", linkBytes));
                return (Truncate(Encoding.UTF8.GetBytes(AsciiOnly(Encoding.UTF8.GetString(linkBytes))), Field.LinkNameLength), null);
        }
    }

    // ustar splits a long name at a '/' into prefix (<= 155 bytes) and name (<= 100 bytes).
    private static bool TrySplitUstar(byte[] nameBytes, out (byte[] Name, byte[]? Prefix) split)
    {
        if (nameBytes.Length <= Field.NameLength)
        {
            split = (nameBytes, null);
            return true;
        }

        // Directories end in '/': the split slash must not be that last one.
        for (var slash = Math.Min(nameBytes.Length - 2, Field.PrefixLength); slash > 0; slash--)
        {
            if (nameBytes[slash] == (byte)'/' && nameBytes.Length - slash - 1 <= Field.NameLength)
            {
                split = (nameBytes[(slash + 1)..], nameBytes[..slash]);
                return true;
            }
        }

        split = default;
        return false;
    }

    private void WriteGnuLongLink(char type, byte[] longName)
    {
        var data = new byte[longName.Length + 1]; // NUL-terminated
        longName.CopyTo(data, 0);
        WriteHeaderBlock(Encoding.ASCII.GetBytes(GnuLongLinkName), default, type, 0, 0, 0, data.Length, 0, 0, 0, gnu: true);
        WriteData(new MemoryStream(data), data.Length);
    }

    private static void AddNumberIfTooBig(List<(string, byte[])> pax, string key, long value, int fieldLength)
    {
        if (value < 0 || value > MaxOctal(fieldLength))
        {
            pax.Add((key, Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture))));
        }
    }

    private static long MaxOctal(int fieldLength) => (1L << (3 * (fieldLength - 1))) - 1;

    // A PAX record is "<length> <key>=<value>\n" where length counts the whole record, its own digits included.
    private static byte[] EncodePaxRecords(List<(string Key, byte[] Value)> records)
    {
        using var buffer = new MemoryStream();
        foreach (var (key, value) in records)
        {
            var keyBytes = Encoding.UTF8.GetBytes(key);
            var rest = 1 + keyBytes.Length + 1 + value.Length + 1;
            var length = rest + 1;
            while (length.ToString(CultureInfo.InvariantCulture).Length + rest != length)
            {
                length = length.ToString(CultureInfo.InvariantCulture).Length + rest;
            }

            buffer.Write(Encoding.ASCII.GetBytes(length.ToString(CultureInfo.InvariantCulture) + " "));
            buffer.Write(keyBytes);
            buffer.WriteByte((byte)'=');
            buffer.Write(value);
            buffer.WriteByte((byte)'\n');
        }

        return buffer.ToArray();
    }

    private void WriteHeaderBlock(byte[] name, byte[]? prefix, char typeFlag, uint mode, long uid, long gid, long size, long mtime,
        int devMajor, int devMinor, bool gnu, byte[]? linkName = null)
    {
        Span<byte> header = stackalloc byte[BlockSize];
        header.Clear();
        name.AsSpan(0, Math.Min(name.Length, Field.NameLength)).CopyTo(header[Field.Name..]);
        WriteOctal(header.Slice(Field.Mode, Field.ModeLength), mode);
        WriteOctal(header.Slice(Field.Uid, Field.UidLength), InRange(uid, Field.UidLength));
        WriteOctal(header.Slice(Field.Gid, Field.GidLength), InRange(gid, Field.GidLength));
        WriteOctal(header.Slice(Field.Size, Field.SizeLength), InRange(size, Field.SizeLength));
        WriteOctal(header.Slice(Field.Mtime, Field.MtimeLength), InRange(mtime, Field.MtimeLength));
        header[Field.TypeFlag] = (byte)typeFlag;
        linkName?.AsSpan(0, Math.Min(linkName.Length, Field.LinkNameLength)).CopyTo(header[Field.LinkName..]);
        if (gnu)
        {
            "ustar  \0"u8.CopyTo(header[Field.Magic..]); // old GNU magic + version, as GNU tar writes with long links
        }
        else
        {
            "ustar\0"u8.CopyTo(header[Field.Magic..]);
            "00"u8.CopyTo(header[Field.Version..]);
        }

        if (typeFlag is '3' or '4')
        {
            WriteOctal(header.Slice(Field.DevMajor, Field.DevMajorLength), (long)devMajor);
            WriteOctal(header.Slice(Field.DevMinor, Field.DevMinorLength), (long)devMinor);
        }

        if (prefix is not null)
        {
            prefix.CopyTo(header[Field.Prefix..]);
        }

        // The checksum is computed with its own field as spaces, then stored as 6 octal digits, NUL, space.
        header.Slice(Field.Checksum, Field.ChecksumLength).Fill((byte)' ');
        var checksum = 0;
        foreach (var b in header)
        {
            checksum += b;
        }

        WriteOctal(header.Slice(Field.Checksum, 7), checksum);
        header[Field.Checksum + 7] = (byte)' ';
        _output.Write(header);
        Position += BlockSize;
    }

    // Values that do not fit are carried by a PAX record; the ustar field then holds 0 (size never
    // overflows below 8 GiB, and a bigger one is always in PAX).
    private static long InRange(long value, int fieldLength) => value < 0 || value > MaxOctal(fieldLength) ? 0 : value;

    private static void WriteOctal(Span<byte> field, long value)
    {
        // Zero-padded digits followed by a NUL terminator.
        var digits = field.Length - 1;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }

        field[digits] = 0;
    }

    private void WriteData(Stream data, long length)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long copied = 0;
            int read;
            while ((read = data.Read(buffer, 0, (int)Math.Min(buffer.Length, length - copied + 1))) > 0)
            {
                copied += read;
                if (copied > length)
                {
                    throw new InvalidOperationException($"content is longer than its declared {length} bytes");
                }

                _output.Write(buffer, 0, read);
            }

            if (copied != length)
            {
                throw new InvalidOperationException($"content ended after {copied} of its declared {length} bytes");
            }

            var padding = (int)((BlockSize - (length % BlockSize)) % BlockSize);
            _output.Write(new byte[padding]);
            Position += length + padding;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static string AsciiOnly(string text) =>
        string.Concat(text.Select(c => c < 0x80 ? c : '_'));

    private static byte[] Truncate(byte[] bytes, int length) => bytes.Length <= length ? bytes : bytes[..length];
}
