using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using TurboOci.Storage;

namespace TurboOci.Frontends.Nbd;

/// <summary>One export: a name clients ask for and the block source behind it.</summary>
public sealed record NbdExport(string Name, BlockSource Source, string? Description = null, bool ReadOnly = false)
{
    /// <summary>Read-only when asked, or when the source cannot write.</summary>
    public bool IsReadOnly => ReadOnly || !Source.CanWrite;
}

/// <summary>Where and how an <see cref="NbdServer"/> listens.</summary>
public sealed record NbdServerOptions
{
    /// <summary>A Unix socket path to listen on (replaced if a stale socket file is there).</summary>
    public string? UnixSocketPath { get; init; }

    /// <summary>A TCP endpoint; use port 0 for any free port. Loopback unless <see cref="AllowNonLoopback"/>.</summary>
    public IPEndPoint? TcpEndPoint { get; init; }

    /// <summary>Permit a TCP address other than 127.0.0.1 or ::1 (the protocol has no authentication).</summary>
    public bool AllowNonLoopback { get; init; }

    /// <summary>The largest READ or WRITE; longer reads are refused with EINVAL, longer writes end the connection.</summary>
    public int MaxTransfer { get; init; } = 32 << 20;

    /// <summary>Requests of one connection served at the same time.</summary>
    public int MaxInFlight { get; init; } = 64;

    /// <summary>Clients connected at the same time; more are turned away at accept.</summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>Negotiation options accepted before the client must choose an export.</summary>
    public int MaxOptions { get; init; } = 256;

    /// <summary>Receives one line per connection error (protocol violations, I/O errors), for logs.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// An NBD server (fixed newstyle negotiation) exporting block sources over a Unix socket and/or
/// loopback TCP. Each connection serves many requests at once; a client that breaks the protocol
/// is disconnected, and no request reaches a source outside its size.
/// </summary>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly Dictionary<string, NbdExport> _exports;
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly ConcurrentDictionary<NbdConnection, Task> _connections = new();
    private readonly CancellationTokenSource _stop = new();
    private long _protocolErrors;
    private int _disposed;

    private NbdServer(IEnumerable<NbdExport> exports, NbdServerOptions options)
    {
        Options = options;
        _exports = exports.ToDictionary(e => e.Name, StringComparer.Ordinal);
        if (_exports.Count == 0)
        {
            throw new ArgumentException("an NBD server needs at least one export", nameof(exports));
        }
    }

    public NbdServerOptions Options { get; }

    /// <summary>The bound TCP endpoint (with the real port when 0 was asked), or null.</summary>
    public IPEndPoint? TcpEndPoint { get; private set; }

    public string? UnixSocketPath => Options.UnixSocketPath;

    public IReadOnlyCollection<NbdExport> Exports => _exports.Values;

    /// <summary>Connections that ended because the client broke the protocol.</summary>
    public long ProtocolErrors => Interlocked.Read(ref _protocolErrors);

    public int ActiveConnections => _connections.Count;

    /// <summary>Starts listening on every endpoint in <paramref name="options"/>.</summary>
    public static NbdServer Start(IEnumerable<NbdExport> exports, NbdServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.UnixSocketPath is null && options.TcpEndPoint is null)
        {
            throw new ArgumentException("give a Unix socket path, a TCP endpoint, or both");
        }

        if (options.TcpEndPoint is { } tcp && !options.AllowNonLoopback && !IPAddress.IsLoopback(tcp.Address))
        {
            throw new ArgumentException($"NBD has no authentication: {tcp.Address} is not a loopback address (AllowNonLoopback overrides)");
        }

        var server = new NbdServer(exports, options);
        try
        {
            if (options.UnixSocketPath is { } path)
            {
                if (File.Exists(path))
                {
                    File.Delete(path); // a socket file left by a dead server
                }

                var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                server._listeners.Add(unix);
                unix.Bind(new UnixDomainSocketEndPoint(path));
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                unix.Listen(options.MaxConnections);
            }

            if (options.TcpEndPoint is { } endPoint)
            {
                var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                server._listeners.Add(listener);
                listener.Bind(endPoint);
                listener.Listen(options.MaxConnections);
                server.TcpEndPoint = (IPEndPoint)listener.LocalEndPoint!;
            }

            foreach (var listener in server._listeners)
            {
                server._acceptLoops.Add(Task.Run(() => server.AcceptLoopAsync(listener)));
            }

            return server;
        }
        catch
        {
            foreach (var listener in server._listeners)
            {
                listener.Dispose();
            }

            throw;
        }
    }

    /// <summary>The URI clients such as nbdinfo take: nbd+unix:///NAME?socket=PATH, or nbd://127.0.0.1:PORT/NAME.</summary>
    public string UriFor(string exportName, bool tcp = false)
    {
        var name = Uri.EscapeDataString(exportName);
        if (tcp)
        {
            var endPoint = TcpEndPoint ?? throw new InvalidOperationException("the server does not listen on TCP");
            var host = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address.ToString();
            return $"nbd://{host}:{endPoint.Port}/{name}";
        }

        var socket = UnixSocketPath ?? throw new InvalidOperationException("the server does not listen on a Unix socket");
        return $"nbd+unix:///{name}?socket={socket}";
    }

    internal bool TryFindExport(string name, out NbdExport export)
    {
        if (_exports.TryGetValue(name, out export!))
        {
            return true;
        }

        // The empty name is the default export: the only one, when there is only one.
        if (name.Length == 0 && _exports.Count == 1)
        {
            export = _exports.Values.First();
            return true;
        }

        return false;
    }

    internal void ReportProtocolError(string message)
    {
        Interlocked.Increment(ref _protocolErrors);
        Options.Log?.Invoke(message);
    }

    internal void ReportError(string message) => Options.Log?.Invoke(message);

    private Task AcceptLoopAsync(Socket listener) => SocketAcceptLoop.RunAsync(
        listener,
        atCapacity: () => _connections.Count >= Options.MaxConnections,
        serve: client =>
        {
            if (client.AddressFamily != AddressFamily.Unix)
            {
                client.NoDelay = true;
            }

            var connection = new NbdConnection(this, client);
            var run = connection.RunAsync(_stop.Token);
            _connections[connection] = run;
            _ = run.ContinueWith(_ => _connections.TryRemove(connection, out Task? _), TaskScheduler.Default);
        },
        acceptFailed: e => ReportError($"accept failed: {e.Message}"),
        _stop.Token);

    /// <summary>Stops listening, disconnects every client (waiting for requests being served) and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        foreach (var connection in _connections.Keys)
        {
            connection.Abort();
        }

        await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        if (UnixSocketPath is { } path && File.Exists(path))
        {
            File.Delete(path);
        }

        _stop.Dispose();
    }
}
