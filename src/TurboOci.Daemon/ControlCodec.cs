using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace TurboOci.Daemon;

/// <summary>
/// The control protocol's wire form: one JSON object per line, UTF-8, each request answered by one response
/// line. Lines are bounded before they are buffered, and malformed ones become errors, never crashes.
/// </summary>
public static class ControlCodec
{
    /// <summary>The longest line either side accepts; real requests are a few hundred bytes, a long list a few KiB.</summary>
    public const int MaxLineBytes = 1 << 20;

    public static byte[] Encode(ControlRequest request) => EncodeLine(request, ControlJson.Default.ControlRequest);

    public static byte[] Encode(ControlResponse response) => EncodeLine(response, ControlJson.Default.ControlResponse);

    public static ControlRequest DecodeRequest(ReadOnlySpan<byte> line) => Decode(line, ControlJson.Default.ControlRequest, "request");

    public static ControlResponse DecodeResponse(ReadOnlySpan<byte> line) => Decode(line, ControlJson.Default.ControlResponse, "response");

    /// <summary>The device list as indented JSON, for <c>turbooci list --json</c>.</summary>
    public static string DevicesToJson(IReadOnlyList<DeviceRecord> devices) =>
        JsonSerializer.Serialize(new DaemonState { Devices = devices }, StateOptions.DaemonState);

    /// <summary>Writes the state file whole or not at all (a temporary file renamed over it).</summary>
    public static void SaveState(string path, DaemonState state)
    {
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(state, StateOptions.DaemonState));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads the state file; a missing file is an empty state.</summary>
    public static DaemonState LoadState(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return new DaemonState();
        }

        if (info.Length > MaxLineBytes)
        {
            throw new InvalidDataException($"{path} is {info.Length} bytes, more than the {MaxLineBytes} a state file may have");
        }

        return Decode(File.ReadAllBytes(path), ControlJson.Default.DaemonState, "state file " + path);
    }

    private static ControlJson StateOptions { get; } = new(new JsonSerializerOptions(ControlJson.Default.Options) { WriteIndented = true });

    private static byte[] EncodeLine<T>(T value, JsonTypeInfo<T> type)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static T Decode<T>(ReadOnlySpan<byte> json, JsonTypeInfo<T> type, string what)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new InvalidDataException($"the {what} is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"malformed {what}: {e.Message}", e);
        }
    }
}

/// <summary>Splits a stream into lines of at most <see cref="ControlCodec.MaxLineBytes"/>, without the newline.</summary>
public sealed class ControlLineReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[4096];
    private readonly ArrayBufferWriter<byte> _line = new(256);
    private int _start;
    private int _end;

    /// <summary>The next line, or null at the end of the stream (a final line without newline counts as a line).</summary>
    public async ValueTask<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
    {
        _line.ResetWrittenCount();
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                if (_end == 0)
                {
                    return _line.WrittenCount > 0 ? _line.WrittenSpan.ToArray() : null;
                }
            }

            var available = _buffer.AsSpan(_start, _end - _start);
            var newline = available.IndexOf((byte)'\n');
            var take = newline < 0 ? available : available[..newline];
            if (_line.WrittenCount + take.Length > ControlCodec.MaxLineBytes)
            {
                throw new InvalidDataException($"a control line is longer than {ControlCodec.MaxLineBytes} bytes");
            }

            _line.Write(take);
            _start += newline < 0 ? available.Length : newline + 1;
            if (newline >= 0)
            {
                return _line.WrittenSpan.ToArray();
            }
        }
    }
}
