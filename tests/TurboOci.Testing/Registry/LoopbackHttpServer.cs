using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TurboOci.Testing.Registry;

/// <summary>One HTTP/1.1 request as the loopback server read it; the body is read in full.</summary>
public sealed class LoopbackRequest
{
    public required string Method { get; init; }

    /// <summary>The request target as sent: path and query.</summary>
    public required string Target { get; init; }

    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    public required byte[] Body { get; init; }

    public string Path => Target.Split('?', 2)[0];

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary>The decoded query parameters; a repeated key keeps every value.</summary>
    public ILookup<string, string> Query =>
        (Target.Split('?', 2) is [_, var query] ? query : "")
            .Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToLookup(kv => Uri.UnescapeDataString(kv[0]), kv => kv.Length > 1 ? Uri.UnescapeDataString(kv[1].Replace('+', ' ')) : "");
}

/// <summary>
/// A tiny HTTP/1.1 server on 127.0.0.1 over a raw socket, for test peers that must misbehave in ways a
/// real server never would (reset a connection mid-body, stall, lie about lengths). The handler gets the
/// parsed request and the raw connection stream and writes whatever bytes it likes; returning true keeps
/// the connection alive for the next request.
/// </summary>
public sealed class LoopbackHttpServer : IAsyncDisposable, IDisposable
{
    private const int MaxHeaderBytes = 64 * 1024;
    private const int MaxBodyBytes = 256 * 1024 * 1024;

    private readonly Socket _listener;
    private readonly Func<LoopbackRequest, Stream, Socket, CancellationToken, Task<bool>> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly List<Socket> _connections = [];

    public LoopbackHttpServer(Func<LoopbackRequest, Stream, Socket, CancellationToken, Task<bool>> handler)
        : this(handler, new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp), new IPEndPoint(IPAddress.Loopback, 0))
    {
    }

    /// <summary>Serves HTTP on a Unix domain socket at <paramref name="socketPath"/> instead of TCP (<see cref="Port"/> is 0).</summary>
    public LoopbackHttpServer(Func<LoopbackRequest, Stream, Socket, CancellationToken, Task<bool>> handler, string socketPath)
        : this(handler, new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified), new UnixDomainSocketEndPoint(socketPath))
    {
        SocketPath = socketPath;
    }

    private LoopbackHttpServer(Func<LoopbackRequest, Stream, Socket, CancellationToken, Task<bool>> handler, Socket listener, EndPoint endPoint)
    {
        _handler = handler;
        _listener = listener;
        _listener.Bind(endPoint);
        _listener.Listen(128);
        Port = _listener.LocalEndPoint is IPEndPoint ip ? ip.Port : 0;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>For a Unix-socket server: its path.</summary>
    public string? SocketPath { get; }

    /// <summary>http://127.0.0.1:PORT</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>Writes a complete response with a body and Content-Length.</summary>
    public static async Task WriteResponseAsync(Stream stream, int status, string reason, IEnumerable<KeyValuePair<string, string>>? headers,
        ReadOnlyMemory<byte> body, CancellationToken cancellationToken, bool headOnly = false)
    {
        var head = new StringBuilder();
        head.Append(CultureInfoInvariant($"HTTP/1.1 {status} {reason}\r\n"));
        var hasLength = false;
        foreach (var (name, value) in headers ?? [])
        {
            hasLength |= name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase);
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        if (!hasLength)
        {
            head.Append("Content-Length: ").Append(body.Length).Append("\r\n");
        }

        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), cancellationToken).ConfigureAwait(false);
        if (!headOnly)
        {
            await stream.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        }

        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string CultureInfoInvariant(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>Closes a connection with a TCP reset instead of a clean FIN.</summary>
    public static void Reset(Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            lock (_connections)
            {
                _connections.Add(socket);
            }

            _ = Task.Run(() => ServeConnectionAsync(socket));
        }
    }

    private async Task ServeConnectionAsync(Socket socket)
    {
        try
        {
            if (socket.AddressFamily != AddressFamily.Unix)
            {
                socket.NoDelay = true;
            }

            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var reader = new BufferedRequestReader(stream);
            while (!_stop.IsCancellationRequested)
            {
                var request = await reader.ReadRequestAsync(_stop.Token).ConfigureAwait(false);
                if (request is null || !await _handler(request, stream, socket, _stop.Token).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidDataException)
        {
            // The peer went away or the handler dropped the connection on purpose.
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(socket);
            }

            socket.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        lock (_connections)
        {
            foreach (var socket in _connections)
            {
                socket.Dispose();
            }
        }

        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Reads request heads and bodies off one keep-alive connection.</summary>
    private sealed class BufferedRequestReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[MaxHeaderBytes];
        private int _start;
        private int _end;

        public async Task<LoopbackRequest?> ReadRequestAsync(CancellationToken cancellationToken)
        {
            int headEnd;
            while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }

                if (_end == _buffer.Length)
                {
                    throw new InvalidDataException("request head too large");
                }

                var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return null;
                }

                _end += read;
            }

            var head = Encoding.ASCII.GetString(_buffer, _start, headEnd);
            _start += headEnd + 4;
            var lines = head.Split("\r\n");
            var requestLine = lines[0].Split(' ');
            if (requestLine.Length != 3)
            {
                throw new InvalidDataException("bad request line");
            }

            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var line in lines.Skip(1))
            {
                var colon = line.IndexOf(':');
                if (colon > 0)
                {
                    headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                }
            }

            var length = headers.TryGetValue("Content-Length", out var text) ? long.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : 0;
            if (length is < 0 or > MaxBodyBytes)
            {
                throw new InvalidDataException("bad Content-Length");
            }

            var body = new byte[length];
            var copied = Math.Min((int)length, _end - _start);
            Buffer.BlockCopy(_buffer, _start, body, 0, copied);
            _start += copied;
            if (copied < length)
            {
                await stream.ReadExactlyAsync(body.AsMemory(copied), cancellationToken).ConfigureAwait(false);
            }

            return new LoopbackRequest { Method = requestLine[0], Target = requestLine[1], Headers = headers, Body = body };
        }
    }
}
