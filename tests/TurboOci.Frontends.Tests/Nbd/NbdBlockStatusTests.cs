using System.Text.Json;
using TurboOci.Frontends.Nbd;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Nbd;

/// <summary>The base:allocation metadata context, read by nbdinfo --map, from the source's extents.</summary>
public sealed class NbdBlockStatusTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task NbdinfoMapShowsTheSourcesZeroExtentsAsHoles()
    {
        using var temp = new TempDir();
        var bytes = new byte[8 * MiB];
        new Random(31).NextBytes(bytes);
        bytes.AsSpan(2 * MiB, 3 * MiB).Clear();
        var source = new ExtentListingSource(bytes, zeroStart: 2 * MiB, zeroLength: 3 * MiB);
        await using var server = NbdServer.Start([new NbdExport("sparse", source)], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock") });

        var map = JsonDocument.Parse(Tool.RunChecked("nbdinfo", "--map", "--json", server.UriFor("sparse")).Stdout).RootElement
            .EnumerateArray().Select(e => (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("type").GetInt32())).ToList();
        Assert.Equal([(0L, 2L * MiB, 0), (2L * MiB, 3L * MiB, 3), (5L * MiB, 3L * MiB, 0)], map);

        // nbdcopy uses the map to skip the hole and still produces the same bytes.
        Tool.RunChecked("nbdcopy", server.UriFor("sparse"), temp.File("copy.img"));
        Assert.Equal(bytes, File.ReadAllBytes(temp.File("copy.img")));
    }

    [Fact]
    public async Task BlockStatusWithoutTheContextIsRefused()
    {
        using var temp = new TempDir();
        await using var server = NbdServer.Start([new NbdExport("d", new MemoryBlockSource(new byte[MiB]))], new NbdServerOptions { UnixSocketPath = temp.File("nbd.sock") });
        using var client = await NbdHostileClientTests.ConnectAsync(server, "d", structured: true);
        await client.SendAsync(NbdParserTests.Request(NbdCommand.BlockStatus, NbdCommandFlags.None, 5, 0, 4096));
        var error = await NbdHostileClientTests.ReceiveExactlyAsync(client, NbdMagic.StructuredReplyHeaderSize + 6);
        Assert.Equal((ushort)NbdReplyType.Error, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(error.AsSpan(6)));
        Assert.Equal((uint)NbdError.Invalid, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(error.AsSpan(20)));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 1, (byte)'d', 0, 0, 0, 1, 0, 0, 0, 15, (byte)'b', (byte)'a', (byte)'s', (byte)'e', (byte)':', (byte)'a', (byte)'l', (byte)'l', (byte)'o', (byte)'c', (byte)'a', (byte)'t', (byte)'i', (byte)'o', (byte)'n' }, true)]
    [InlineData(new byte[] { 0, 0, 0, 1, (byte)'d', 0, 0, 0, 0 }, true)]
    [InlineData(new byte[] { 0, 0, 0, 1, (byte)'d', 0xFF, 0xFF, 0xFF, 0xFF }, false)] // a count the data cannot hold
    [InlineData(new byte[] { 0, 0, 0, 1, (byte)'d', 0, 0, 0, 1, 0, 0, 0, 99, 0 }, false)] // a query longer than the data
    [InlineData(new byte[] { 0, 0, 0, 1, (byte)'d', 0, 0, 0, 0, 7 }, false)] // trailing bytes
    public void MetaContextRequestsAreParsedStrictly(byte[] data, bool valid) =>
        Assert.Equal(valid, NbdParser.TryParseMetaContextRequest(data, out _, out _));

    /// <summary>Memory with one range the source knows to be zeros.</summary>
    private sealed class ExtentListingSource(byte[] bytes, long zeroStart, long zeroLength) : BlockSource
    {
        private readonly MemoryBlockSource _inner = new(bytes);

        public override long Size => _inner.Size;

        public override int ReadAt(long offset, Span<byte> destination) => _inner.ReadAt(offset, destination);

        public override IEnumerable<BlockExtent> GetExtents(long offset, long length)
        {
            var end = Math.Min(Size, offset + length);
            (long Start, long End, ExtentKind Kind)[] all = [(0, zeroStart, ExtentKind.Data), (zeroStart, zeroStart + zeroLength, ExtentKind.Zero), (zeroStart + zeroLength, Size, ExtentKind.Data)];
            foreach (var (start, stop, kind) in all)
            {
                var from = Math.Max(start, offset);
                var to = Math.Min(stop, end);
                if (to > from)
                {
                    yield return new BlockExtent(from, to - from, kind);
                }
            }
        }
    }
}
