using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using TurboOci.Storage;

namespace TurboOci.Formats.ZFile;

/// <summary>
/// overlaybd's one-member tar around a layer blob (a ZFile or an LSMT file), which lets registries
/// store it as an ordinary tar layer.
/// </summary>
/// <remarks>
/// <para>Reading follows overlaybd's <c>is_tar_file</c>/<c>TarFile</c>: only POSIX ustar
/// (<c>"ustar\0"</c> + <c>"00"</c> + a valid header checksum) is recognised, so GNU tar headers
/// are "not a tar". The payload starts at 512 when the archive has no PAX header, and at exactly
/// 1536 when it has one; its size is the PAX <c>size</c> record when present and non-zero, else the
/// member's octal size. Shapes overlaybd would misread (PAX data longer than one block, a first
/// member that is not a regular file, base-256 sizes) are refused rather than guessed.</para>
/// <para>Writing produces what <c>overlaybd-commit -t</c> / <c>overlaybd-zfile -t</c> write, byte for byte:
/// a PAX header <c>overlaybd.pax</c> (mode, uid, gid and mtime left as NUL bytes), one block with the
/// record <c>"NN size=LEN\n"</c>, a ustar header <c>overlaybd.commit</c> (mode 100644, uid/gid 0,
/// uname/gname root, mtime 0, size field 0), the payload, zero padding to 512 and two zero blocks.</para>
/// </remarks>
public static class TarEnvelope
{
    public const string FormatName = "tar envelope";

    /// <summary>Where the payload starts when the envelope has a PAX header (what overlaybd writes).</summary>
    public const int PaxPayloadOffset = 3 * BlockLength;

    /// <summary>Where the payload starts in a plain one-header ustar envelope (Go's archive/tar, the base layer blob).</summary>
    public const int UstarPayloadOffset = BlockLength;

    /// <summary>The member name overlaybd always writes, whatever the output file is called.</summary>
    public const string MemberName = "overlaybd.commit";

    private const string PaxName = "overlaybd.pax";
    private const int BlockLength = 512;
    private const int MemberMode = 0x81A4; // S_IFREG | 0644, as st_mode of a freshly created output file
    private const string RootName = "root";

    private static class Field
    {
        public const int Name = 0;
        public const int Mode = 100;
        public const int Uid = 108;
        public const int Gid = 116;
        public const int Size = 124;
        public const int Mtime = 136;
        public const int Checksum = 148;
        public const int TypeFlag = 156;
        public const int Magic = 257;
        public const int Version = 263;
        public const int Uname = 265;
        public const int Gname = 297;
    }

    /// <summary>
    /// Opens the payload of a tar envelope without copying: a slice of <paramref name="blob"/>.
    /// Returns false when the blob is not a POSIX ustar archive (read it raw, as overlaybd does).
    /// </summary>
    /// <exception cref="TurboOciFormatException">It is a ustar archive but not one overlaybd could read correctly (truncated, bad PAX data, ...).</exception>
    public static bool TryOpen(BlockSource blob, [NotNullWhen(true)] out SliceBlockSource? payload)
    {
        ArgumentNullException.ThrowIfNull(blob);
        payload = null;
        Span<byte> header = stackalloc byte[BlockLength];
        if (blob.Size < BlockLength || blob.ReadAt(0, header) != BlockLength || !IsUstarHeader(header))
        {
            return false;
        }

        long payloadStart;
        long? paxSize = null;
        var typeFlag = header[Field.TypeFlag];
        if (typeFlag is (byte)'x' or (byte)'g')
        {
            var paxLength = ParseOctal(header, Field.Size, 12, "pax_header.size", 0);
            if (paxLength > BlockLength)
            {
                Fail("pax_header.size", Field.Size, $"PAX data of {paxLength} bytes spans more than one block; overlaybd would read the payload at 1536 regardless, so this blob is refused");
            }

            if (blob.Size < PaxPayloadOffset)
            {
                Fail("member_header", BlockLength * 2L, $"the blob is {blob.Size} bytes: it ends before the member header after the PAX header (truncated)");
            }

            Span<byte> paxData = stackalloc byte[BlockLength];
            blob.ReadExactlyAt(BlockLength, paxData);
            if (typeFlag == (byte)'x')
            {
                paxSize = ParsePaxSize(paxData[..(int)paxLength]);
            }

            blob.ReadExactlyAt(2 * BlockLength, header);
            if (!IsUstarHeader(header))
            {
                Fail("member_header", 2 * BlockLength, "after the PAX header, the next block is not a valid ustar header");
            }

            typeFlag = header[Field.TypeFlag];
            payloadStart = PaxPayloadOffset;
        }
        else
        {
            payloadStart = UstarPayloadOffset;
        }

        var headerOffset = payloadStart - BlockLength;
        if (typeFlag is not ((byte)'0' or 0))
        {
            Fail("member_header.typeflag", headerOffset + Field.TypeFlag, $"the member is of type '{(char)typeFlag}', not a regular file: not a layer envelope");
        }

        var size = paxSize is > 0 ? paxSize.Value : ParseOctal(header, Field.Size, 12, "member_header.size", headerOffset);
        if (size > blob.Size - payloadStart)
        {
            Fail(paxSize is > 0 ? "pax.size" : "member_header.size", paxSize is > 0 ? BlockLength : headerOffset + Field.Size,
                $"a payload of {size} bytes at {payloadStart} runs past the end of the {blob.Size}-byte blob (truncated)");
        }

        payload = new SliceBlockSource(blob, payloadStart, size);
        return true;
    }

    /// <summary>Writes the envelope around <paramref name="payload"/> exactly as overlaybd does.</summary>
    public static void Write(Stream output, BlockSource payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(payload);
        WriteHeader(output, payload.Size);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (var offset = 0L; offset < payload.Size;)
            {
                var chunk = (int)Math.Min(buffer.Length, payload.Size - offset);
                payload.ReadExactlyAt(offset, buffer.AsSpan(0, chunk));
                output.Write(buffer, 0, chunk);
                offset += chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        WriteFooter(output, payload.Size);
    }

    /// <summary>Writes the envelope around the next <paramref name="payloadLength"/> bytes of <paramref name="payload"/>.</summary>
    /// <exception cref="EndOfStreamException">The payload stream ended early.</exception>
    public static void Write(Stream output, Stream payload, long payloadLength)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        WriteHeader(output, payloadLength);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (var done = 0L; done < payloadLength;)
            {
                var chunk = (int)Math.Min(buffer.Length, payloadLength - done);
                payload.ReadExactly(buffer, 0, chunk);
                output.Write(buffer, 0, chunk);
                done += chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        WriteFooter(output, payloadLength);
    }

    /// <summary>The whole envelope's size for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static long GetEnvelopeLength(long payloadLength) =>
        PaxPayloadOffset + RoundUpToBlock(payloadLength) + (2 * BlockLength);

    /// <summary>The 1536 bytes before the payload.</summary>
    public static void WriteHeader(Span<byte> destination, long payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        var envelope = destination[..PaxPayloadOffset];
        envelope.Clear();

        var pax = envelope[..BlockLength];
        var record = FormatPaxRecord("size", payloadLength.ToString(CultureInfo.InvariantCulture));
        WriteString(pax, Field.Name, PaxName);
        pax[Field.TypeFlag] = (byte)'x';
        WriteOctalNoNul(pax.Slice(Field.Size, 12), record.Length);
        WriteMagic(pax);
        WriteChecksum(pax);
        Encoding.ASCII.GetBytes(record, envelope.Slice(BlockLength, BlockLength));

        var member = envelope.Slice(2 * BlockLength, BlockLength);
        WriteString(member, Field.Name, MemberName);
        WriteOctal(member.Slice(Field.Mode, 8), MemberMode);
        WriteOctal(member.Slice(Field.Uid, 8), 0);
        WriteOctal(member.Slice(Field.Gid, 8), 0);
        WriteOctalNoNul(member.Slice(Field.Size, 12), 0); // overlaybd: the real size lives only in the PAX record
        WriteOctalNoNul(member.Slice(Field.Mtime, 12), 0);
        member[Field.TypeFlag] = (byte)'0';
        WriteMagic(member);
        WriteString(member, Field.Uname, RootName);
        WriteString(member, Field.Gname, RootName);
        WriteChecksum(member);
    }

    private static void WriteHeader(Stream output, long payloadLength)
    {
        var header = new byte[PaxPayloadOffset];
        WriteHeader(header, payloadLength);
        output.Write(header);
    }

    /// <summary>
    /// What follows a payload of <paramref name="payloadLength"/> bytes: zero padding to 512 and two zero
    /// blocks. With <see cref="WriteHeader(Span{byte}, long)"/>, lets a writer stream a payload of unknown
    /// length after a placeholder and fill the header in at the end, as overlaybd does.
    /// </summary>
    public static void WriteFooter(Stream output, long payloadLength)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        var padding = (int)(RoundUpToBlock(payloadLength) - payloadLength);
        Span<byte> zeros = stackalloc byte[(2 * BlockLength) + BlockLength];
        zeros.Clear();
        output.Write(zeros[..(padding + (2 * BlockLength))]);
    }

    /// <summary>
    /// Streams a payload of not-yet-known length into the envelope, as overlaybd does: a placeholder where
    /// the header goes, the payload written by <paramref name="writePayload"/>, the footer, then the header
    /// filled in once the length is known. <paramref name="output"/> must be seekable and positioned at 0.
    /// </summary>
    public static TResult WriteAround<TResult>(Stream output, Func<Stream, TResult> writePayload)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(writePayload);
        output.Write(new byte[PaxPayloadOffset]);
        var result = writePayload(output);
        var payloadLength = output.Length - PaxPayloadOffset;
        WriteFooter(output, payloadLength);
        output.Position = 0;
        WriteHeader(output, payloadLength);
        output.Seek(0, SeekOrigin.End);
        return result;
    }

    private static long RoundUpToBlock(long length) => checked((length + BlockLength - 1) / BlockLength * BlockLength);

    /// <summary>overlaybd's format_pax_record: "&lt;len&gt; key=value\n" where len counts its own digits.</summary>
    private static string FormatPaxRecord(string key, string value)
    {
        var length = key.Length + value.Length + 3;
        length += length.ToString(CultureInfo.InvariantCulture).Length;
        var record = $"{length} {key}={value}\n";
        return record.Length == length ? record : $"{record.Length} {key}={value}\n";
    }

    private static bool IsUstarHeader(ReadOnlySpan<byte> header) =>
        header.Slice(Field.Magic, 5).SequenceEqual("ustar"u8)
        && header.Slice(Field.Version, 2).SequenceEqual("00"u8)
        && ChecksumMatches(header);

    /// <summary>The stored checksum must equal the unsigned or the signed byte sum (checksum field read as spaces), as libtar accepts.</summary>
    private static bool ChecksumMatches(ReadOnlySpan<byte> header)
    {
        if (!TryParseOctal(header.Slice(Field.Checksum, 8), out var stored))
        {
            return false;
        }

        long unsignedSum = 0, signedSum = 0;
        for (var i = 0; i < BlockLength; i++)
        {
            var b = i is >= Field.Checksum and < Field.Checksum + 8 ? (byte)' ' : header[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }

        return stored == unsignedSum || stored == signedSum;
    }

    private static long ParseOctal(ReadOnlySpan<byte> header, int field, int length, string name, long headerOffset)
    {
        if (!TryParseOctal(header.Slice(field, length), out var value))
        {
            Fail(name, headerOffset + field, (header[field] & 0x80) != 0
                ? "base-256 sizes are not supported (overlaybd reads them as 0)"
                : $"\"{Encoding.ASCII.GetString(header.Slice(field, length)).TrimEnd('\0')}\" is not an octal number");
        }

        return value;
    }

    /// <summary>Octal digits, optionally surrounded by spaces and ended by NUL or space; empty means 0.</summary>
    private static bool TryParseOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        var i = 0;
        while (i < field.Length && field[i] == (byte)' ')
        {
            i++;
        }

        var digits = 0;
        for (; i < field.Length && (uint)(field[i] - '0') < 8; i++, digits++)
        {
            if (digits >= 21)
            {
                return false; // more than 63 bits: not a size we could use
            }

            value = (value << 3) | (uint)(field[i] - '0');
        }

        for (; i < field.Length; i++)
        {
            if (field[i] is not ((byte)' ' or 0))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Finds the "size" record in PAX extended-header data ("len key=value\n"...).</summary>
    private static long? ParsePaxSize(ReadOnlySpan<byte> data)
    {
        long? size = null;
        var position = 0;
        while (position < data.Length)
        {
            if (data[position] == 0)
            {
                break; // zero padding after the last record
            }

            var rest = data[position..];
            var space = rest.IndexOf((byte)' ');
            var length = 0;
            if (space <= 0 || !int.TryParse(rest[..space], NumberStyles.None, CultureInfo.InvariantCulture, out length)
                || length <= space + 1 || length > rest.Length || rest[length - 1] != (byte)'\n')
            {
                Fail("pax.record", BlockLength + position, "malformed PAX record (expected \"<length> <key>=<value>\\n\")");
            }

            var keyValue = rest[(space + 1)..(length - 1)];
            var equals = keyValue.IndexOf((byte)'=');
            if (equals < 0)
            {
                Fail("pax.record", BlockLength + position, "PAX record without '='");
            }

            if (keyValue[..equals].SequenceEqual("size"u8))
            {
                var parsed = 0L;
                if (!long.TryParse(keyValue[(equals + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out parsed))
                {
                    Fail("pax.size", BlockLength + position, $"\"{Encoding.ASCII.GetString(keyValue[(equals + 1)..])}\" is not a size");
                }

                size = parsed;
            }

            position += length;
        }

        return size;
    }

    private static void WriteString(Span<byte> header, int field, string value) =>
        Encoding.ASCII.GetBytes(value, header[field..]);

    private static void WriteMagic(Span<byte> header)
    {
        "ustar\0"u8.CopyTo(header[Field.Magic..]);
        "00"u8.CopyTo(header[Field.Version..]);
    }

    /// <summary>libtar's int_to_oct: octal right-aligned in length-2 characters, a space, a NUL.</summary>
    private static void WriteOctal(Span<byte> field, long value)
    {
        var text = Convert.ToString(value, 8).PadLeft(field.Length - 2) + " ";
        Encoding.ASCII.GetBytes(text, field);
        field[^1] = 0;
    }

    /// <summary>libtar's int_to_oct_nonull: octal right-aligned in length-1 characters, then a space.</summary>
    private static void WriteOctalNoNul(Span<byte> field, long value) =>
        Encoding.ASCII.GetBytes(Convert.ToString(value, 8).PadLeft(field.Length - 1) + " ", field);

    private static void WriteChecksum(Span<byte> header)
    {
        header.Slice(Field.Checksum, 8).Fill((byte)' ');
        var sum = 0L;
        foreach (var b in header[..BlockLength])
        {
            sum += b;
        }

        WriteOctal(header.Slice(Field.Checksum, 8), sum);
    }

    [DoesNotReturn]
    private static void Fail(string field, long offset, string problem) =>
        TurboOciFormatException.Throw(FormatName, field, offset, problem);
}
