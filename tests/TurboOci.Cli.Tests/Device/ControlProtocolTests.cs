using System.Net.Sockets;
using System.Text;
using TurboOci.Daemon;
using TurboOci.Testing;

namespace TurboOci.Cli.Tests.Device;

/// <summary>The control protocol in process: its JSON lines, their bounds, and a live control socket fed bad input.</summary>
public sealed class ControlProtocolTests
{
    [Fact]
    public void RequestsAndResponsesRoundTripAsOneJsonLineWithLowercaseNames()
    {
        var request = new ControlRequest { Op = ControlOps.Attach, Config = "/s/config.v1.json", Frontend = DeviceFrontend.Nbd, ReadWrite = true, Name = "n" };
        var line = ControlCodec.Encode(request);
        Assert.Equal((byte)'\n', line[^1]);
        Assert.Equal(1, line.Count(b => b == '\n'));
        var text = Encoding.UTF8.GetString(line);
        Assert.Contains("\"op\":\"attach\"", text, StringComparison.Ordinal);
        Assert.Contains("\"frontend\":\"nbd\"", text, StringComparison.Ordinal);
        Assert.Contains("\"readWrite\":true", text, StringComparison.Ordinal);
        Assert.Equal(request, ControlCodec.DecodeRequest(line.AsSpan(0, line.Length - 1)));

        var response = ControlResponse.Failed(ControlErrorKind.BadData, "bad");
        var decoded = ControlCodec.DecodeResponse(ControlCodec.Encode(response).AsSpan()[..^1]);
        Assert.Equal((false, ControlErrorKind.BadData, "bad"), (decoded.Ok, decoded.ErrorKind, decoded.Error));
        Assert.Contains("\"errorKind\":\"bad-data\"", Encoding.UTF8.GetString(ControlCodec.Encode(response)), StringComparison.Ordinal);
    }

    [Fact]
    public void KeysMissingFromALineKeepTheirDefaults()
    {
        var request = ControlCodec.DecodeRequest("{\"op\":\"list\"}"u8);
        Assert.Equal(new ControlRequest { Op = ControlOps.List }, request);
        Assert.Equal("", request.Config);
        Assert.Empty(ControlCodec.DecodeResponse("{\"ok\":true}"u8).Devices);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[1,2]")]
    [InlineData("{\"op\":")]
    [InlineData("{\"op\":\"attach\",\"frontend\":\"floppy\"}")]
    [InlineData("{\"op\":\"attach\",\"readWrite\":\"yes\"}")]
    public void MalformedRequestsAreInvalidData(string json) =>
        Assert.Throws<InvalidDataException>(() => ControlCodec.DecodeRequest(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public async Task TheLineReaderSplitsLinesAndRefusesOneLongerThanTheBound()
    {
        var reader = new ControlLineReader(new MemoryStream("a\n\nbc\nlast"u8.ToArray()));
        List<string?> lines = [];
        while (await reader.ReadLineAsync(default) is { } line)
        {
            lines.Add(Encoding.UTF8.GetString(line));
        }

        Assert.Equal(["a", "", "bc", "last"], lines);

        var endless = new ControlLineReader(new MemoryStream(new byte[ControlCodec.MaxLineBytes + 1]));
        await Assert.ThrowsAsync<InvalidDataException>(async () => await endless.ReadLineAsync(default));
    }

    [Fact]
    public async Task ALiveControlSocketAnswersBadRequestsWithErrorsAndKeepsServing()
    {
        using var temp = new TempDir();
        var paths = new DaemonPaths(temp.File("turbooci.sock"));
        var log = new List<string>();
        await using var service = new DeviceService(paths, line => { lock (log) { log.Add(line); } });
        await using (ControlServer.Start(paths, service, _ => { }))
        {
            Assert.True(ControlClient.IsRunning(paths.SocketPath));
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(paths.SocketPath));
            await using var stream = new NetworkStream(socket);
            var reader = new ControlLineReader(stream);
            async Task<ControlResponse> Ask(string line)
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
                return ControlCodec.DecodeResponse(await reader.ReadLineAsync(default));
            }

            var garbage = await Ask("{not json");
            Assert.Equal((false, ControlErrorKind.Usage), (garbage.Ok, garbage.ErrorKind));
            Assert.Contains("malformed request", garbage.Error, StringComparison.Ordinal);

            var unknown = await Ask("{\"op\":\"format-disk\"}");
            Assert.Equal((false, ControlErrorKind.Usage), (unknown.Ok, unknown.ErrorKind));
            Assert.Contains("unknown op 'format-disk'", unknown.Error, StringComparison.Ordinal);

            var relative = await Ask("{\"op\":\"attach\",\"config\":\"stack/config.v1.json\"}");
            Assert.True(relative.Error.Contains("absolute path", StringComparison.Ordinal), relative.Error);

            var missing = await Ask($"{{\"op\":\"attach\",\"config\":\"{temp.File("missing.json")}\"}}");
            Assert.Equal((false, ControlErrorKind.IoError), (missing.Ok, missing.ErrorKind));
            Assert.Contains("missing.json", missing.Error, StringComparison.Ordinal);

            var list = await Ask("{\"op\":\"list\"}");
            Assert.True(list.Ok);
            Assert.Empty(list.Devices);

            // A line without end longer than the bound ends that connection only.
            await stream.WriteAsync(new byte[ControlCodec.MaxLineBytes + 10]);
            Assert.Null(await reader.ReadLineAsync(default));
            Assert.True((await ControlClient.SendAsync(paths.SocketPath, new ControlRequest { Op = ControlOps.List }, default)).Ok);
        }

        Assert.False(File.Exists(paths.SocketPath));
    }
}
