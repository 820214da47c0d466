using System.Globalization;
using System.Text;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.Tar;

public enum TarMemberType
{
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// <summary>
/// One archive member with PAX and GNU overrides applied. <see cref="DataOffset"/> is the absolute
/// offset of its data in the uncompressed tar stream (what mapped mode maps file blocks to).
/// </summary>
public sealed record TarMember(
    string Path,
    TarMemberType Type,
    uint Mode,
    long Uid,
    long Gid,
    long Size,
    Ext4Time Mtime,
    string LinkTarget,
    uint DevMajor,
    uint DevMinor,
    IReadOnlyDictionary<string, byte[]> Xattrs,
    long HeaderOffset,
    long DataOffset);

/// <summary>
/// A forward-only tar reader that knows the byte offset of everything it reads: ustar, GNU (L/K long
/// names, base-256 numbers) and PAX (x/g records, SCHILY.xattr.*). Every length is capped before
/// anything is allocated; malformed input throws <see cref="TurboOciFormatException"/> naming the entry.
/// </summary>
public sealed class TarEntryReader
{
    private const int MaxMetadataSize = 1 << 20;
    private readonly Stream _stream;
    private readonly byte[] _block = new byte[TarFields.BlockSize];
    private long _position;
    private long _pendingData;
    private long _pendingPadding;
    private bool _finished;
    private string _currentEntry = "";

    public TarEntryReader(Stream stream) => _stream = stream;

    /// <summary>Bytes consumed from the stream so far.</summary>
    public long Position => _position;

    /// <summary>The next entry, or null at the end of the archive. Unread data of the previous entry is skipped.</summary>
    public TarMember? Next()
    {
        if (_finished)
        {
            return null;
        }

        SkipPending();
        byte[]? longName = null, longLink = null;
        Dictionary<string, string>? pax = null;
        Dictionary<string, byte[]>? xattrs = null;
        while (true)
        {
            var headerOffset = _position;
            if (!TryReadBlock())
            {
                TurboOciFormatException.Throw(TarHeader.FormatName, "end of archive", headerOffset,
                    "the stream ended without the two zero blocks that close a tar archive");
            }

            if (TarHeader.IsZeroBlock(_block))
            {
                // End of archive: a second zero block should follow; a stream that simply ends is accepted too.
                TryReadBlock();
                _finished = true;
                return null;
            }

            var header = TarHeader.Parse(_block, headerOffset);
            var entryName = Encoding.UTF8.GetString(longName ?? header.Name);
            switch ((char)header.TypeFlag)
            {
                case 'x':
                    (pax, xattrs) = ParsePax(ReadMetadata(header, headerOffset, entryName), headerOffset, entryName, pax, xattrs);
                    continue;
                case 'g':
                    ParsePax(ReadMetadata(header, headerOffset, entryName), headerOffset, entryName, null, null);
                    continue;
                case 'L':
                    longName = TrimNul(ReadMetadata(header, headerOffset, entryName));
                    continue;
                case 'K':
                    longLink = TrimNul(ReadMetadata(header, headerOffset, entryName));
                    continue;
            }

            var type = (char)header.TypeFlag switch
            {
                '0' or '\0' or '7' => TarMemberType.Regular,
                '1' => TarMemberType.HardLink,
                '2' => TarMemberType.Symlink,
                '3' => TarMemberType.CharDevice,
                '4' => TarMemberType.BlockDevice,
                '5' => TarMemberType.Directory,
                '6' => TarMemberType.Fifo,
                var other => Throw<TarMemberType>(headerOffset + TarFields.TypeFlag, entryName, $"unsupported entry type '{other}' (0x{header.TypeFlag:X2})"),
            };

            var path = pax?.GetValueOrDefault("path") ?? entryName;
            var link = pax?.GetValueOrDefault("linkpath") ?? Encoding.UTF8.GetString(longLink ?? header.LinkName);
            if (type == TarMemberType.Regular && header.TypeFlag == 0 && path.EndsWith('/'))
            {
                type = TarMemberType.Directory; // old tars mark directories only by the trailing slash
            }

            var size = pax?.GetValueOrDefault("size") is { } paxSize ? PaxNumber(paxSize, headerOffset, path, "size") : header.Size;
            var uid = pax?.GetValueOrDefault("uid") is { } paxUid ? PaxNumber(paxUid, headerOffset, path, "uid") : header.Uid;
            var gid = pax?.GetValueOrDefault("gid") is { } paxGid ? PaxNumber(paxGid, headerOffset, path, "gid") : header.Gid;
            var mtime = pax?.GetValueOrDefault("mtime") is { } paxTime ? PaxTime(paxTime, headerOffset, path) : new Ext4Time(header.Mtime, 0);
            if (uid > uint.MaxValue || gid > uint.MaxValue)
            {
                Throw<int>(headerOffset + TarFields.Uid, path, "uid or gid does not fit 32 bits");
            }

            if (pax is not null && pax.Keys.Any(k => k.StartsWith("GNU.sparse.", StringComparison.Ordinal)))
            {
                Throw<int>(headerOffset, path, "GNU sparse files are not supported");
            }

            // Only regular files carry data: for links, devices and directories the size field is
            // ignored and no data follows (Go's archive/tar treats these "header-only" types the same).
            var dataSize = type == TarMemberType.Regular ? size : 0;

            var entry = new TarMember(path, type, header.Mode & 0xFFF, uid, gid, type == TarMemberType.Regular ? size : 0, mtime, link,
                header.DevMajor, header.DevMinor, (IReadOnlyDictionary<string, byte[]>?)xattrs ?? new Dictionary<string, byte[]>(),
                headerOffset, _position);
            _pendingData = dataSize;
            _pendingPadding = Padding(dataSize);
            _currentEntry = path;
            return entry;
        }
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes of the current entry's data; 0 at its end.</summary>
    public int ReadData(Span<byte> buffer)
    {
        var wanted = (int)Math.Min(buffer.Length, _pendingData);
        if (wanted == 0)
        {
            return 0;
        }

        var read = _stream.Read(buffer[..wanted]);
        if (read == 0)
        {
            Throw<int>(_position, _currentEntry, "the archive ends inside this entry's data");
        }

        _position += read;
        _pendingData -= read;
        return read;
    }

    /// <summary>Skips the rest of the current entry's data and padding, failing if the stream is too short.</summary>
    public void SkipPending()
    {
        Skip(_pendingData);
        _pendingData = 0;
        Skip(_pendingPadding);
        _pendingPadding = 0;
    }

    private void Skip(long count)
    {
        // File data are only needed as offsets: a stream that can pass over them is not asked to copy them out.
        var skippable = _stream as ISkippableStream;
        Span<byte> buffer = skippable is null ? stackalloc byte[8192] : default;
        while (count > 0)
        {
            var read = skippable?.Skip(count) ?? _stream.Read(buffer[..(int)Math.Min(buffer.Length, count)]);
            if (read == 0)
            {
                Throw<int>(_position, _currentEntry, $"the archive ends {count} bytes before the end of this entry's data");
            }

            _position += read;
            count -= read;
        }
    }

    private static long Padding(long size) => (TarFields.BlockSize - size % TarFields.BlockSize) % TarFields.BlockSize;

    private bool TryReadBlock()
    {
        var total = 0;
        while (total < _block.Length)
        {
            var read = _stream.Read(_block, total, _block.Length - total);
            if (read == 0)
            {
                if (total == 0)
                {
                    return false;
                }

                Throw<int>(_position + total, "after " + _currentEntry, "the archive ends inside a header block");
            }

            total += read;
        }

        _position += total;
        return true;
    }

    private byte[] ReadMetadata(TarHeader header, long headerOffset, string entryName)
    {
        if (header.Size > MaxMetadataSize)
        {
            Throw<int>(headerOffset + TarFields.Size, entryName, $"metadata entry of {header.Size} bytes exceeds the {MaxMetadataSize}-byte limit");
        }

        var data = new byte[header.Size];
        for (var done = 0; done < data.Length;)
        {
            var read = _stream.Read(data, done, data.Length - done);
            if (read == 0)
            {
                Throw<int>(_position, entryName, "the archive ends inside a PAX or GNU long-name record");
            }

            done += read;
            _position += read;
        }

        Skip(Padding(header.Size));
        return data;
    }

    private static byte[] TrimNul(byte[] value)
    {
        var end = Array.IndexOf(value, (byte)0);
        return end < 0 ? value : value[..end];
    }

    /// <summary>PAX records: "LENGTH KEY=VALUE\n", LENGTH counting the whole record in bytes.</summary>
    private static (Dictionary<string, string>, Dictionary<string, byte[]>) ParsePax(
        byte[] data, long headerOffset, string entryName, Dictionary<string, string>? pax, Dictionary<string, byte[]>? xattrs)
    {
        pax ??= new Dictionary<string, string>(StringComparer.Ordinal);
        xattrs ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var span = data.AsSpan();
        var at = 0;
        while (at < span.Length)
        {
            var space = span[at..].IndexOf((byte)' ');
            var length = 0;
            if (space <= 0 || !int.TryParse(span.Slice(at, space), NumberStyles.None, CultureInfo.InvariantCulture, out length)
                || length <= space + 1 || length > span.Length - at || span[at + length - 1] != (byte)'\n')
            {
                Throw<int>(headerOffset, entryName, $"malformed PAX record at byte {at} of the extended header");
            }

            var record = span.Slice(at + space + 1, length - space - 2);
            var equals = record.IndexOf((byte)'=');
            if (equals <= 0)
            {
                Throw<int>(headerOffset, entryName, $"PAX record at byte {at} has no key=value");
            }

            var key = Encoding.UTF8.GetString(record[..equals]);
            var value = record[(equals + 1)..];
            const string xattrPrefix = "SCHILY.xattr.";
            if (key.StartsWith(xattrPrefix, StringComparison.Ordinal))
            {
                xattrs[key[xattrPrefix.Length..]] = value.ToArray();
            }
            else
            {
                pax[key] = Encoding.UTF8.GetString(value);
            }

            at += length;
        }

        return (pax, xattrs);
    }

    private static long PaxNumber(string value, long headerOffset, string path, string key)
    {
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            Throw<int>(headerOffset, path, $"PAX {key} '{value}' is not a non-negative integer");
        }

        return number;
    }

    /// <summary>PAX mtime: decimal seconds with an optional fraction, kept to nanoseconds.</summary>
    private static Ext4Time PaxTime(string value, long headerOffset, string path)
    {
        var dot = value.IndexOf('.');
        var whole = dot < 0 ? value : value[..dot];
        var fraction = dot < 0 ? "" : value[(dot + 1)..];
        if (!long.TryParse(whole, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds)
            || fraction.Any(c => c is < '0' or > '9'))
        {
            Throw<int>(headerOffset, path, $"PAX mtime '{value}' is not a decimal time");
        }

        var nanos = fraction.Length == 0 ? 0u : uint.Parse(fraction.PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
        if (seconds < 0 && nanos > 0)
        {
            seconds--;
            nanos = 1_000_000_000 - nanos;
        }

        return new Ext4Time(seconds, nanos);
    }

    private static T Throw<T>(long offset, string entry, string problem) =>
        throw new TurboOciFormatException(TarHeader.FormatName, $"entry '{entry}'", offset, problem);
}
