using System.Buffers.Binary;
using System.Text;

namespace TurboOci.Frontends.Nbd;

/// <summary>Encoders for what the server sends; each writes into a span and returns the byte count.</summary>
public static class NbdWire
{
    /// <summary>The greeting: NBDMAGIC, IHAVEOPT and the handshake flags (18 bytes).</summary>
    public static int WriteGreeting(Span<byte> destination, NbdHandshakeFlags flags)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.Init);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.Option);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)flags);
        return 18;
    }

    /// <summary>An option reply header; <paramref name="dataLength"/> bytes of data follow it.</summary>
    public static int WriteOptionReplyHeader(Span<byte> destination, NbdOptionType option, NbdOptionReplyType type, int dataLength)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], (uint)dataLength);
        return NbdMagic.OptionReplyHeaderSize;
    }

    /// <summary>The whole option reply as bytes: header plus data.</summary>
    public static byte[] OptionReply(NbdOptionType option, NbdOptionReplyType type, ReadOnlySpan<byte> data = default)
    {
        var bytes = new byte[NbdMagic.OptionReplyHeaderSize + data.Length];
        WriteOptionReplyHeader(bytes, option, type, data.Length);
        data.CopyTo(bytes.AsSpan(NbdMagic.OptionReplyHeaderSize));
        return bytes;
    }

    /// <summary>An error reply whose data is a human-readable message, as the protocol allows.</summary>
    public static byte[] OptionError(NbdOptionType option, NbdOptionReplyType type, string message) =>
        OptionReply(option, type, Encoding.UTF8.GetBytes(message));

    /// <summary>NBD_REP_SERVER data for NBD_OPT_LIST: u32 name length, name, then the description.</summary>
    public static byte[] ServerEntry(string name, string? description)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var descriptionBytes = Encoding.UTF8.GetBytes(description ?? string.Empty);
        var data = new byte[4 + nameBytes.Length + descriptionBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        descriptionBytes.CopyTo(data, 4 + nameBytes.Length);
        return data;
    }

    /// <summary>NBD_INFO_EXPORT: u16 type, u64 size, u16 transmission flags.</summary>
    public static byte[] InfoExport(ulong size, NbdTransmissionFlags flags)
    {
        var data = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(2), size);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(10), (ushort)flags);
        return data;
    }

    /// <summary>NBD_INFO_BLOCK_SIZE: u16 type, u32 minimum, u32 preferred, u32 maximum.</summary>
    public static byte[] InfoBlockSize(uint minimum, uint preferred, uint maximum)
    {
        var data = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(2), minimum);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(6), preferred);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(10), maximum);
        return data;
    }

    /// <summary>NBD_INFO_NAME or NBD_INFO_DESCRIPTION: u16 type then the UTF-8 text.</summary>
    public static byte[] InfoText(NbdInfoType type, string text)
    {
        var textBytes = Encoding.UTF8.GetBytes(text);
        var data = new byte[2 + textBytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)type);
        textBytes.CopyTo(data, 2);
        return data;
    }

    /// <summary>The reply to NBD_OPT_EXPORT_NAME: u64 size, u16 flags and, unless the client said NO_ZEROES, 124 zero bytes.</summary>
    public static byte[] ExportNameReply(ulong size, NbdTransmissionFlags flags, bool noZeroes)
    {
        var data = new byte[10 + (noZeroes ? 0 : 124)];
        BinaryPrimitives.WriteUInt64BigEndian(data, size);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(8), (ushort)flags);
        return data;
    }

    /// <summary>NBD_REP_META_CONTEXT data: u32 context id, then the context name.</summary>
    public static byte[] MetaContext(uint id, string name)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + nameBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, id);
        nameBytes.CopyTo(data, 4);
        return data;
    }

    /// <summary>A simple reply (struct nbd_reply): magic, error, cookie; read data follows on success.</summary>
    public static int WriteSimpleReply(Span<byte> destination, NbdError error, ulong cookie)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdMagic.ReplyMagicOffset..], NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[NbdMagic.ReplyErrorOffset..], (uint)error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[NbdMagic.ReplyCookieOffset..], cookie);
        return NbdMagic.SimpleReplySize;
    }

    /// <summary>A structured reply chunk header: magic, flags, type, cookie, payload length.</summary>
    public static int WriteStructuredHeader(Span<byte> destination, bool done, NbdReplyType type, ulong cookie, int payloadLength)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)(done ? 1 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], (uint)payloadLength);
        return NbdMagic.StructuredReplyHeaderSize;
    }

    /// <summary>A final NBD_REPLY_TYPE_ERROR chunk: u32 error, u16 message length 0 (no message: it could echo client bytes).</summary>
    public static int WriteStructuredError(Span<byte> destination, NbdError error, ulong cookie)
    {
        var length = WriteStructuredHeader(destination, done: true, NbdReplyType.Error, cookie, 6);
        BinaryPrimitives.WriteUInt32BigEndian(destination[length..], (uint)error);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(length + 4)..], 0);
        return length + 6;
    }
}
