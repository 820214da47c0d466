using System.Buffers;
using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Frontends.Nbd;

/// <summary>A client option: its type and its data, which stays valid until the reader is advanced.</summary>
public readonly record struct NbdOption(NbdOptionType Type, ReadOnlySequence<byte> Data);

/// <summary>A transmission request; for WRITE, <see cref="Payload"/> holds the data (valid until the reader is advanced).</summary>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, uint Length, ReadOnlySequence<byte> Payload);

/// <summary>
/// The client side of the NBD wire, parsed in the style of Kestrel's HTTP parser: each method takes
/// the bytes received so far and returns false (consuming nothing, having examined everything)
/// until one whole message is there, so every prefix of a valid message is "incomplete". A message
/// that can never be valid throws <see cref="TurboOciFormatException"/> with its offset in the
/// connection's byte stream; the connection is then closed, as nothing after it can be framed.
/// </summary>
public sealed class NbdParser
{
    /// <summary>The format name in exceptions.</summary>
    public const string Format = "nbd";

    /// <summary>Longer option data than this is refused (names are at most 4096 bytes).</summary>
    public const int MaxOptionLength = 64 << 10;

    public NbdParser(int maxWritePayload)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWritePayload, 512);
        MaxWritePayload = maxWritePayload;
    }

    /// <summary>The largest WRITE payload accepted; a longer one cannot be buffered and ends the connection.</summary>
    public int MaxWritePayload { get; }

    /// <summary>How many bytes of the connection were consumed by parsed messages: the offset of the next one.</summary>
    public long StreamOffset { get; private set; }

    /// <summary>The 4-byte client flags that answer the greeting.</summary>
    public bool TryParseClientFlags(in ReadOnlySequence<byte> buffer, out NbdClientFlags flags, out SequencePosition consumed, out SequencePosition examined)
    {
        flags = NbdClientFlags.None;
        consumed = buffer.Start;
        examined = buffer.End;
        if (buffer.Length < 4)
        {
            return false;
        }

        var value = ReadUInt32(buffer, 0);
        if ((value & ~(uint)(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes)) != 0)
        {
            Throw("client flags", 0, $"unknown flags 0x{value:x8}");
        }

        flags = (NbdClientFlags)value;
        return Consume(buffer, 4, out consumed, out examined);
    }

    /// <summary>One option: IHAVEOPT magic, type, length and that many bytes of data.</summary>
    public bool TryParseOption(in ReadOnlySequence<byte> buffer, out NbdOption option, out SequencePosition consumed, out SequencePosition examined)
    {
        option = default;
        consumed = buffer.Start;
        examined = buffer.End;
        if (buffer.Length < NbdMagic.OptionHeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[NbdMagic.OptionHeaderSize];
        buffer.Slice(0, NbdMagic.OptionHeaderSize).CopyTo(header);
        var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
        if (magic != NbdMagic.Option)
        {
            Throw("option magic", 0, $"0x{magic:x16} is not IHAVEOPT");
        }

        var type = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
        if (length > MaxOptionLength)
        {
            Throw("option length", 12, $"{length} bytes is more than the {MaxOptionLength} accepted");
        }

        var total = NbdMagic.OptionHeaderSize + (long)length;
        if (buffer.Length < total)
        {
            return false;
        }

        option = new NbdOption((NbdOptionType)type, buffer.Slice(NbdMagic.OptionHeaderSize, length));
        return Consume(buffer, total, out consumed, out examined);
    }

    /// <summary>One request: the 28-byte header and, for WRITE, its payload.</summary>
    public bool TryParseRequest(in ReadOnlySequence<byte> buffer, out NbdRequest request, out SequencePosition consumed, out SequencePosition examined)
    {
        request = default;
        consumed = buffer.Start;
        examined = buffer.End;
        if (buffer.Length < NbdMagic.RequestSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[NbdMagic.RequestSize];
        buffer.Slice(0, NbdMagic.RequestSize).CopyTo(header);
        var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (magic != NbdMagic.Request)
        {
            Throw("request magic", NbdMagic.RequestMagicOffset, $"0x{magic:x8} is not the request magic");
        }

        var flags = (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(header[NbdMagic.RequestFlagsOffset..]);
        var command = (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(header[NbdMagic.RequestTypeOffset..]);
        var cookie = BinaryPrimitives.ReadUInt64BigEndian(header[NbdMagic.RequestCookieOffset..]);
        var offset = BinaryPrimitives.ReadUInt64BigEndian(header[NbdMagic.RequestOffsetOffset..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[NbdMagic.RequestLengthOffset..]);

        var payloadLength = 0L;
        if (command == NbdCommand.Write)
        {
            // Only WRITE carries data; its length frames the stream, so a length we will not
            // buffer leaves no way to find the next request.
            if (length > MaxWritePayload)
            {
                Throw("write length", NbdMagic.RequestLengthOffset, $"{length} bytes is more than the {MaxWritePayload} accepted");
            }

            payloadLength = length;
        }

        var total = NbdMagic.RequestSize + payloadLength;
        if (buffer.Length < total)
        {
            return false;
        }

        request = new NbdRequest(flags, command, cookie, offset, length, buffer.Slice(NbdMagic.RequestSize, payloadLength));
        return Consume(buffer, total, out consumed, out examined);
    }

    /// <summary>The data of NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, count × u16 info type.</summary>
    public static bool TryParseInfoRequest(ReadOnlySpan<byte> data, out string name, out NbdInfoType[] requested)
    {
        name = string.Empty;
        requested = [];
        if (data.Length < 6)
        {
            return false;
        }

        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)data.Length - 6)
        {
            return false;
        }

        var rest = data[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (rest.Length != 2 + (count * 2))
        {
            return false;
        }

        if (!TryDecodeName(data.Slice(4, (int)nameLength), out name))
        {
            return false;
        }

        requested = new NbdInfoType[count];
        for (var i = 0; i < count; i++)
        {
            requested[i] = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(rest[(2 + (2 * i))..]);
        }

        return true;
    }

    /// <summary>
    /// The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: u32 name length, export
    /// name, u32 query count, then each query as u32 length and UTF-8 text.
    /// </summary>
    public static bool TryParseMetaContextRequest(ReadOnlySpan<byte> data, out string exportName, out string[] queries)
    {
        exportName = string.Empty;
        queries = [];
        if (data.Length < 8)
        {
            return false;
        }

        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)data.Length - 8 || !TryDecodeName(data.Slice(4, (int)nameLength), out exportName))
        {
            return false;
        }

        var rest = data[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt32BigEndian(rest);
        rest = rest[4..];

        // Each query takes at least its 4-byte length: a count the data cannot hold is refused before allocating.
        if (count > (uint)rest.Length / 4)
        {
            return false;
        }

        var parsed = new string[count];
        for (var i = 0; i < count; i++)
        {
            if (rest.Length < 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(rest);
            if (length > (uint)rest.Length - 4 || !TryDecodeName(rest.Slice(4, (int)length), out parsed[i]))
            {
                return false;
            }

            rest = rest[(4 + (int)length)..];
        }

        queries = parsed;
        return rest.IsEmpty;
    }

    /// <summary>Export names are UTF-8 (the protocol says so), and at most 4096 bytes.</summary>
    public static bool TryDecodeName(ReadOnlySpan<byte> bytes, out string name)
    {
        name = string.Empty;
        if (bytes.Length > 4096 || System.Text.Unicode.Utf8.IsValid(bytes) is false)
        {
            return false;
        }

        name = System.Text.Encoding.UTF8.GetString(bytes);
        return true;
    }

    private bool Consume(in ReadOnlySequence<byte> buffer, long length, out SequencePosition consumed, out SequencePosition examined)
    {
        consumed = buffer.GetPosition(length);
        examined = consumed;
        StreamOffset += length;
        return true;
    }

    private static uint ReadUInt32(in ReadOnlySequence<byte> buffer, long offset)
    {
        Span<byte> bytes = stackalloc byte[4];
        buffer.Slice(offset, 4).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private void Throw(string field, long offsetInMessage, string problem) =>
        TurboOciFormatException.Throw(Format, field, StreamOffset + offsetInMessage, problem);
}
