using System.Buffers;
using System.Buffers.Binary;
using TurboOci.Frontends.Nbd;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tests.Nbd;

/// <summary>
/// The parser's contract, as Kestrel's HttpParserTests check theirs: every strict prefix of a valid
/// message is incomplete (nothing consumed, everything examined), a whole message parses the same
/// however it is split into segments, and a message that can never be valid throws with its offset.
/// </summary>
public sealed class NbdParserTests
{
    private delegate bool Parse(NbdParser parser, in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined);

    public static TheoryData<string> ValidMessages() => new() { "flags", "option-go", "option-empty", "request-read", "request-write", "request-flush" };

    [Theory]
    [MemberData(nameof(ValidMessages))]
    public void EveryPrefixOfAValidMessageIsIncomplete(string name)
    {
        var (bytes, parse) = Message(name);
        for (var length = 0; length < bytes.Length; length++)
        {
            var parser = new NbdParser(1 << 20);
            var buffer = new ReadOnlySequence<byte>(bytes, 0, length);
            Assert.False(parse(parser, buffer, out var consumed, out var examined), $"{name}: a {length}-byte prefix parsed");
            Assert.Equal(buffer.Start, consumed);
            Assert.Equal(buffer.End, examined);
            Assert.Equal(0, parser.StreamOffset);
        }
    }

    [Theory]
    [MemberData(nameof(ValidMessages))]
    public void AWholeMessageParsesWhicheverWayItIsSegmented(string name)
    {
        var (bytes, parse) = Message(name);
        var withTrailer = bytes.Concat(new byte[] { 0xAB, 0xCD }).ToArray();
        foreach (var segmentSize in new[] { 1, 3, 7, withTrailer.Length })
        {
            var parser = new NbdParser(1 << 20);
            var buffer = Segmented(withTrailer, segmentSize);
            Assert.True(parse(parser, buffer, out var consumed, out var examined), $"{name} in {segmentSize}-byte segments");
            Assert.Equal(bytes.Length, buffer.Slice(buffer.Start, consumed).Length);
            Assert.Equal(consumed, examined);
            Assert.Equal(bytes.Length, parser.StreamOffset);
        }
    }

    [Fact]
    public void RequestFieldsAreReadBigEndianAndTheWritePayloadIsSliced()
    {
        var payload = Enumerable.Range(0, 600).Select(i => (byte)i).ToArray();
        var bytes = Request(NbdCommand.Write, NbdCommandFlags.Fua, cookie: 0x0102030405060708, offset: 0x1122334455667788, length: 600).Concat(payload).ToArray();
        var parser = new NbdParser(1 << 20);
        Assert.True(parser.TryParseRequest(new ReadOnlySequence<byte>(bytes), out var request, out _, out _));
        Assert.Equal(NbdCommand.Write, request.Command);
        Assert.Equal(NbdCommandFlags.Fua, request.Flags);
        Assert.Equal(0x0102030405060708UL, request.Cookie);
        Assert.Equal(0x1122334455667788UL, request.Offset);
        Assert.Equal(600u, request.Length);
        Assert.Equal(payload, request.Payload.ToArray());
    }

    [Fact]
    public void AReadOfAnyLengthCarriesNoPayload()
    {
        // The length of a READ is what the client wants back, not bytes that follow: the next request starts right after.
        var bytes = Request(NbdCommand.Read, NbdCommandFlags.None, 1, 0, uint.MaxValue);
        var parser = new NbdParser(1 << 20);
        Assert.True(parser.TryParseRequest(new ReadOnlySequence<byte>(bytes), out var request, out var consumed, out _));
        Assert.Equal(uint.MaxValue, request.Length);
        Assert.True(request.Payload.IsEmpty);
        Assert.Equal(NbdMagic.RequestSize, new ReadOnlySequence<byte>(bytes).Slice(0, consumed).Length);
    }

    [Fact]
    public void BadMagicThrowsWithTheAbsoluteOffset()
    {
        var parser = new NbdParser(1 << 20);
        var first = Request(NbdCommand.Flush, NbdCommandFlags.None, 1, 0, 0);
        var second = Request(NbdCommand.Flush, NbdCommandFlags.None, 2, 0, 0);
        second[0] ^= 0xFF;
        var stream = first.Concat(second).ToArray();
        Assert.True(parser.TryParseRequest(new ReadOnlySequence<byte>(stream), out _, out _, out _));
        var error = Assert.Throws<TurboOciFormatException>(() => parser.TryParseRequest(new ReadOnlySequence<byte>(stream, 28, 28), out _, out _, out _));
        Assert.Equal("request magic", error.Field);
        Assert.Equal(28, error.Offset);
    }

    [Fact]
    public void AWriteLongerThanTheLimitThrowsBeforeItsPayloadArrives()
    {
        var parser = new NbdParser(4096);
        var header = Request(NbdCommand.Write, NbdCommandFlags.None, 1, 0, 4097);
        var error = Assert.Throws<TurboOciFormatException>(() => parser.TryParseRequest(new ReadOnlySequence<byte>(header), out _, out _, out _));
        Assert.Equal("write length", error.Field);
        Assert.Equal(NbdMagic.RequestLengthOffset, error.Offset);
    }

    [Fact]
    public void OptionsLongerThanTheLimitAndBadMagicAndUnknownClientFlagsThrow()
    {
        var parser = new NbdParser(4096);
        var big = Option(NbdOptionType.Go, new byte[0]);
        BinaryPrimitives.WriteUInt32BigEndian(big.AsSpan(12), NbdParser.MaxOptionLength + 1);
        Assert.Equal("option length", Assert.Throws<TurboOciFormatException>(() => parser.TryParseOption(new ReadOnlySequence<byte>(big), out _, out _, out _)).Field);

        var bad = Option(NbdOptionType.Go, new byte[0]);
        bad[3] ^= 1;
        Assert.Equal("option magic", Assert.Throws<TurboOciFormatException>(() => parser.TryParseOption(new ReadOnlySequence<byte>(bad), out _, out _, out _)).Field);

        Assert.Equal("client flags", Assert.Throws<TurboOciFormatException>(() => parser.TryParseClientFlags(new ReadOnlySequence<byte>(new byte[] { 0, 0, 0, 4 }), out _, out _, out _)).Field);
    }

    [Theory]
    [InlineData("", new ushort[0], true)]
    [InlineData("disk", new ushort[] { 3, 1 }, true)]
    public void InfoRequestsRoundTrip(string name, ushort[] infos, bool valid)
    {
        var data = InfoData(name, infos);
        Assert.Equal(valid, NbdParser.TryParseInfoRequest(data, out var parsedName, out var requested));
        Assert.Equal(name, parsedName);
        Assert.Equal(infos.Select(i => (NbdInfoType)i), requested);
    }

    [Fact]
    public void MalformedInfoRequestsAreRefused()
    {
        var good = InfoData("disk", [3]);
        Assert.False(NbdParser.TryParseInfoRequest(good.AsSpan(0, good.Length - 1), out _, out _)); // short by one
        Assert.False(NbdParser.TryParseInfoRequest(good.Concat(new byte[] { 0 }).ToArray(), out _, out _)); // one too many
        var lying = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(lying, 0xFFFFFFF0); // a name length past the end
        Assert.False(NbdParser.TryParseInfoRequest(lying, out _, out _));
        var invalidUtf8 = InfoData("disk", []);
        invalidUtf8[4] = 0xFF;
        Assert.False(NbdParser.TryParseInfoRequest(invalidUtf8, out _, out _));
    }

    private static (byte[] Bytes, Parse Parse) Message(string name) => name switch
    {
        "flags" => (new byte[] { 0, 0, 0, 3 }, (NbdParser p, in ReadOnlySequence<byte> b, out SequencePosition c, out SequencePosition e) => p.TryParseClientFlags(b, out _, out c, out e)),
        "option-go" => (Option(NbdOptionType.Go, InfoData("disk", [3])), ParseOption),
        "option-empty" => (Option(NbdOptionType.StructuredReply, []), ParseOption),
        "request-read" => (Request(NbdCommand.Read, NbdCommandFlags.None, 7, 4096, 65536), ParseRequest),
        "request-write" => (Request(NbdCommand.Write, NbdCommandFlags.Fua, 8, 512, 1000).Concat(new byte[1000]).ToArray(), ParseRequest),
        "request-flush" => (Request(NbdCommand.Flush, NbdCommandFlags.None, 9, 0, 0), ParseRequest),
        _ => throw new ArgumentException(name),
    };

    private static bool ParseOption(NbdParser parser, in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined) =>
        parser.TryParseOption(buffer, out _, out consumed, out examined);

    private static bool ParseRequest(NbdParser parser, in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined) =>
        parser.TryParseRequest(buffer, out _, out consumed, out examined);

    internal static byte[] Option(NbdOptionType type, byte[] data)
    {
        var bytes = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, NbdMagic.Option);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), (uint)data.Length);
        data.CopyTo(bytes, 16);
        return bytes;
    }

    internal static byte[] InfoData(string name, ushort[] infos)
    {
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + nameBytes.Length + 2 + (2 * infos.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + nameBytes.Length), (ushort)infos.Length);
        for (var i = 0; i < infos.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + nameBytes.Length + (2 * i)), infos[i]);
        }

        return data;
    }

    internal static byte[] Request(NbdCommand command, NbdCommandFlags flags, ulong cookie, ulong offset, uint length)
    {
        var bytes = new byte[NbdMagic.RequestSize];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(6), (ushort)command);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(24), length);
        return bytes;
    }

    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int segmentSize)
    {
        Segment? first = null;
        Segment? last = null;
        for (var i = 0; i < bytes.Length; i += segmentSize)
        {
            var memory = bytes.AsMemory(i, Math.Min(segmentSize, bytes.Length - i));
            last = last is null ? first = new Segment(memory, 0) : last.Append(memory);
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
