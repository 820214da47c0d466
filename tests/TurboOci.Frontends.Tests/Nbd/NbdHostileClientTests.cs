using System.Buffers.Binary;
using System.Net.Sockets;
using TurboOci.Frontends.Nbd;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Nbd;

/// <summary>Clients that break the rules, by mistake or on purpose, written byte by byte.</summary>
public sealed class NbdHostileClientTests
{
    private const int ExportSize = 1 << 20;

    [Fact]
    public async Task RequestsOutsideTheRulesGetErrorsWithTheirCookiesAndTheConnectionGoesOn()
    {
        using var temp = new TempDir();
        var bytes = new byte[ExportSize];
        new Random(5).NextBytes(bytes);
        var source = new GuardedBlockSource(new MemoryBlockSource(bytes));
        await using var server = NbdServer.Start([new NbdExport("ro", source)], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock"), MaxTransfer = 1 << 16 });
        using var client = await ConnectAsync(server, "ro", structured: false);

        async Task<uint> ErrorOf(NbdCommand command, ulong offset, uint length, ulong cookie, NbdCommandFlags flags = NbdCommandFlags.None, byte[]? payload = null)
        {
            await client.SendAsync(NbdParserTests.Request(command, flags, cookie, offset, length).Concat(payload ?? []).ToArray());
            var reply = await ReceiveExactlyAsync(client, NbdMagic.SimpleReplySize);
            Assert.Equal(NbdMagic.SimpleReply, BinaryPrimitives.ReadUInt32BigEndian(reply));
            Assert.Equal(cookie, BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8)));
            return BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4));
        }

        Assert.Equal((uint)NbdError.Invalid, await ErrorOf(NbdCommand.Read, ExportSize - 10, 100, 1));      // crosses the end
        Assert.Equal((uint)NbdError.Invalid, await ErrorOf(NbdCommand.Read, ulong.MaxValue - 5, 10, 2));   // offset + length wraps
        Assert.Equal((uint)NbdError.Invalid, await ErrorOf(NbdCommand.Read, ExportSize + 1, 0, 3));        // starts past the end
        Assert.Equal((uint)NbdError.Overflow, await ErrorOf(NbdCommand.Read, 0, (1 << 16) + 1, 4));        // longer than the maximum
        Assert.Equal((uint)NbdError.Permission, await ErrorOf(NbdCommand.Write, 0, 4, 5, payload: [1, 2, 3, 4]));
        Assert.Equal((uint)NbdError.Permission, await ErrorOf(NbdCommand.Trim, 0, 4096, 6));
        Assert.Equal((uint)NbdError.Invalid, await ErrorOf((NbdCommand)99, 0, 0, 7));
        Assert.Equal((uint)NbdError.Invalid, await ErrorOf(NbdCommand.BlockStatus, 0, 4096, 8));
        Assert.Equal((uint)NbdError.Invalid, await ErrorOf(NbdCommand.Read, 0, 512, 9, flags: (NbdCommandFlags)0x8000));

        // After all that, a good read still returns the right bytes.
        Assert.Equal(0u, await ErrorOf(NbdCommand.Read, ExportSize - 100, 100, 10));
        Assert.Equal(bytes[^100..], await ReceiveExactlyAsync(client, 100));

        // A bad magic cannot be framed past: the server hangs up.
        var broken = NbdParserTests.Request(NbdCommand.Read, NbdCommandFlags.None, 11, 0, 512);
        broken[0] = 0;
        await client.SendAsync(broken);
        Assert.Equal(0, await client.ReceiveAsync(new byte[16]));
        Assert.Equal(1, server.ProtocolErrors);
        Assert.Empty(source.Violations);
    }

    [Fact]
    public async Task StructuredRepliesCarryReadDataAndErrorsAsChunks()
    {
        using var temp = new TempDir();
        var bytes = new byte[ExportSize];
        new Random(6).NextBytes(bytes);
        await using var server = NbdServer.Start([new NbdExport("ro", new MemoryBlockSource(bytes))], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock") });
        using var client = await ConnectAsync(server, "ro", structured: true);

        await client.SendAsync(NbdParserTests.Request(NbdCommand.Read, NbdCommandFlags.DontFragment, 42, 4096, 1000));
        var header = await ReceiveExactlyAsync(client, NbdMagic.StructuredReplyHeaderSize);
        Assert.Equal(NbdMagic.StructuredReply, BinaryPrimitives.ReadUInt32BigEndian(header));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4))); // NBD_REPLY_FLAG_DONE
        Assert.Equal((ushort)NbdReplyType.OffsetData, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)));
        Assert.Equal(42UL, BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)));
        Assert.Equal(1008u, BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
        var payload = await ReceiveExactlyAsync(client, 1008);
        Assert.Equal(4096UL, BinaryPrimitives.ReadUInt64BigEndian(payload));
        Assert.Equal(bytes.AsSpan(4096, 1000).ToArray(), payload[8..]);

        await client.SendAsync(NbdParserTests.Request(NbdCommand.Read, NbdCommandFlags.None, 43, ExportSize, 1));
        var error = await ReceiveExactlyAsync(client, NbdMagic.StructuredReplyHeaderSize + 6);
        Assert.Equal((ushort)NbdReplyType.Error, BinaryPrimitives.ReadUInt16BigEndian(error.AsSpan(6)));
        Assert.Equal(43UL, BinaryPrimitives.ReadUInt64BigEndian(error.AsSpan(8)));
        Assert.Equal((uint)NbdError.Invalid, BinaryPrimitives.ReadUInt32BigEndian(error.AsSpan(20)));
    }

    [Fact]
    public async Task FuzzedClientsCannotCrashTheServerOrReachOutsideTheExport()
    {
        using var temp = new TempDir();
        var source = new GuardedBlockSource(new MemoryBlockSource(new byte[ExportSize], writable: true));
        var errors = new List<string>();
        await using var server = NbdServer.Start([new NbdExport("rw", source)], new NbdServerOptions
        {
            UnixSocketPath = temp.File("nbd.sock"),
            MaxTransfer = 1 << 16,
            Log = line => { lock (errors) { errors.Add(line); } },
        });

        var transcript = ValidTranscript();
        var random = new Random(20261128);
        for (var round = 0; round < 25; round++)
        {
            var sessions = Enumerable.Range(0, 8).Select(_ => Mutate(transcript, random)).ToList();
            await Task.WhenAll(sessions.Select(session => PlayAsync(server, session)));
        }

        // The server still serves a well-behaved client, and nothing reached outside the export.
        var info = Tool.RunChecked("nbdinfo", "--size", server.UriFor("rw"));
        Assert.Equal(ExportSize.ToString(System.Globalization.CultureInfo.InvariantCulture), info.Stdout.Trim());
        Assert.Empty(source.Violations);
        Assert.True(server.ProtocolErrors > 0, "the mutations never broke the framing: they are too gentle");
        Assert.DoesNotContain(errors, e => e.StartsWith("nbd connection failed", StringComparison.Ordinal));
    }

    /// <summary>What a client sends in a whole session: flags, options, requests of every kind, disconnect.</summary>
    private static byte[] ValidTranscript()
    {
        var parts = new List<byte[]>
        {
            new byte[] { 0, 0, 0, 3 },
            NbdParserTests.Option(NbdOptionType.List, []),
            NbdParserTests.Option(NbdOptionType.StructuredReply, []),
            NbdParserTests.Option(NbdOptionType.SetMetaContext, [0, 0, 0, 2, (byte)'r', (byte)'w', 0, 0, 0, 1, 0, 0, 0, 15, .. "base:allocation"u8]),
            NbdParserTests.Option(NbdOptionType.Info, NbdParserTests.InfoData("rw", [3, 1, 2])),
            NbdParserTests.Option(NbdOptionType.Go, NbdParserTests.InfoData("rw", [3])),
            NbdParserTests.Request(NbdCommand.Write, NbdCommandFlags.Fua, 1, 8192, 512).Concat(Enumerable.Repeat((byte)0x5A, 512)).ToArray(),
            NbdParserTests.Request(NbdCommand.Read, NbdCommandFlags.None, 2, 0, 65536),
            NbdParserTests.Request(NbdCommand.Trim, NbdCommandFlags.None, 3, 4096, 4096),
            NbdParserTests.Request(NbdCommand.WriteZeroes, NbdCommandFlags.NoHole, 4, 65536, 8192),
            NbdParserTests.Request(NbdCommand.Flush, NbdCommandFlags.None, 5, 0, 0),
            NbdParserTests.Request(NbdCommand.BlockStatus, NbdCommandFlags.RequestOne, 8, 4096, 65536),
            NbdParserTests.Request(NbdCommand.Read, NbdCommandFlags.DontFragment, 6, ExportSize - 512, 512),
            NbdParserTests.Request(NbdCommand.Disconnect, NbdCommandFlags.None, 7, 0, 0),
        };
        return parts.SelectMany(p => p).ToArray();
    }

    private static byte[] Mutate(byte[] input, Random random)
    {
        var bytes = input.ToList();
        for (var i = random.Next(1, 6); i > 0; i--)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 32)));
                    break;
                case 3:
                    // An "interesting" big-endian integer: lengths and offsets at the edges.
                    var value = new uint[] { 0, 1, 0x7FFFFFFF, 0xFFFFFFFF, ExportSize, ExportSize + 1, 1 << 16, (1 << 16) + 1 }[random.Next(8)];
                    var word = new byte[4];
                    BinaryPrimitives.WriteUInt32BigEndian(word, value);
                    for (var k = 0; k < 4 && at + k < bytes.Count; k++)
                    {
                        bytes[at + k] = word[k];
                    }

                    break;
                default:
                    bytes.InsertRange(at, bytes.Skip(random.Next(bytes.Count)).Take(random.Next(1, 64)).ToList());
                    break;
            }

            if (bytes.Count == 0)
            {
                break;
            }
        }

        return [.. bytes];
    }

    /// <summary>Sends a session, half-closes, and reads whatever comes back until the server hangs up.</summary>
    private static async Task PlayAsync(NbdServer server, byte[] session)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.UnixSocketPath!));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var drain = Task.Run(async () =>
        {
            var buffer = new byte[1 << 16];
            try
            {
                while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
                {
                }
            }
            catch (SocketException)
            {
                // reset by the server after a protocol error
            }
        });
        try
        {
            await socket.SendAsync(session, SocketFlags.None, timeout.Token);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // the server hung up before reading everything
        }

        await drain; // a hang here fails the test through the timeout
    }

    internal static async Task<Socket> ConnectAsync(NbdServer server, string export, bool structured)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.UnixSocketPath!));
        var greeting = await ReceiveExactlyAsync(socket, 18);
        Assert.Equal(NbdMagic.Init, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(NbdMagic.Option, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        await socket.SendAsync(new byte[] { 0, 0, 0, 3 });
        if (structured)
        {
            await socket.SendAsync(NbdParserTests.Option(NbdOptionType.StructuredReply, []));
            var ack = await ReceiveExactlyAsync(socket, NbdMagic.OptionReplyHeaderSize);
            Assert.Equal((uint)NbdOptionReplyType.Ack, BinaryPrimitives.ReadUInt32BigEndian(ack.AsSpan(12)));
        }

        await socket.SendAsync(NbdParserTests.Option(NbdOptionType.Go, NbdParserTests.InfoData(export, [])));
        while (true)
        {
            var header = await ReceiveExactlyAsync(socket, NbdMagic.OptionReplyHeaderSize);
            var type = (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            await ReceiveExactlyAsync(socket, (int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
            if (type == NbdOptionReplyType.Ack)
            {
                return socket;
            }

            Assert.Equal(NbdOptionReplyType.Info, type);
        }
    }

    internal static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int length)
    {
        var buffer = new byte[length];
        for (var done = 0; done < length;)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var read = await socket.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, timeout.Token);
            Assert.True(read > 0, $"the server closed after {done} of {length} bytes");
            done += read;
        }

        return buffer;
    }
}
