using System.Collections.Concurrent;
using System.Net.Sockets;
using TurboOci.Frontends;
using TurboOci.Storage;

namespace TurboOci.Daemon;

/// <summary>
/// The daemon's control socket: a Unix stream socket, readable and writable by root only, taking
/// <see cref="ControlRequest"/> lines and answering each with one <see cref="ControlResponse"/> line.
/// A failed or malformed request is answered with its error; a line longer than the bound ends that connection only.
/// </summary>
public sealed class ControlServer : IAsyncDisposable
{
    private const int MaxConnections = 64;

    private readonly Socket _listener;
    private readonly DeviceService _service;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly string _socketPath;
    private readonly Task _acceptLoop;

    private ControlServer(Socket listener, string socketPath, DeviceService service, Action<string> log)
    {
        _listener = listener;
        _socketPath = socketPath;
        _service = service;
        _log = log;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Listens on <paramref name="paths"/>' socket, replacing a socket file a dead daemon left.</summary>
    public static ControlServer Start(DaemonPaths paths, DeviceService service, Action<string> log)
    {
        Directory.CreateDirectory(paths.Directory);
        if (File.Exists(paths.SocketPath))
        {
            File.Delete(paths.SocketPath); // the caller holds the daemon lock: whoever made this socket is gone
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(paths.SocketPath));
            File.SetUnixFileMode(paths.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(MaxConnections);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return new ControlServer(listener, paths.SocketPath, service, log);
    }

    /// <summary>Answers one request: never throws, errors become responses.</summary>
    public static async Task<ControlResponse> HandleAsync(DeviceService service, ControlRequest request)
    {
        try
        {
            return request.Op switch
            {
                ControlOps.Attach => ControlResponse.Success(await service.AttachAsync(request).ConfigureAwait(false)),
                ControlOps.Detach => ControlResponse.Success(await service.DetachAsync(request.Target).ConfigureAwait(false)),
                ControlOps.DetachAll => ControlResponse.Success(await service.DetachAllAsync(forget: true).ConfigureAwait(false)),
                ControlOps.List => ControlResponse.Success(await service.ListAsync().ConfigureAwait(false)),
                ControlOps.Unmount => ControlResponse.Success(await service.UnmountAsync(request.Target).ConfigureAwait(false)),
                _ => ControlResponse.Failed(ControlErrorKind.Usage, $"unknown op '{request.Op}' (attach, detach, detach-all, list, umount)"),
            };
        }
        catch (Exception e)
        {
            return ControlResponse.Failed(KindOf(e), e.Message);
        }
    }

    private static ControlErrorKind KindOf(Exception e) => e switch
    {
        TurboOciFormatException or InvalidDataException => ControlErrorKind.BadData,
        ArgumentException or NotSupportedException or FormatException => ControlErrorKind.Usage,
        IOException or UnauthorizedAccessException => ControlErrorKind.IoError,
        _ => ControlErrorKind.Failure,
    };

    private Task AcceptLoopAsync() => SocketAcceptLoop.RunAsync(
        _listener,
        atCapacity: () => _connections.Count >= MaxConnections,
        serve: client =>
        {
            var connection = ServeAsync(client);
            _connections[connection] = 0;
            _ = connection.ContinueWith(done => _connections.TryRemove(done, out _), TaskScheduler.Default);
        },
        acceptFailed: e => _log($"control socket: accept failed: {e.Message}"),
        _stop.Token);

    private async Task ServeAsync(Socket client)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        var reader = new ControlLineReader(stream);
        try
        {
            while (await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false) is { } line)
            {
                // The line may have been read on the socket engine's own thread (inline completions): attaching and
                // mounting block for a while and open registry-backed stacks, so requests run on the thread pool.
                await Task.Yield();
                ControlResponse response;
                try
                {
                    response = await HandleAsync(_service, ControlCodec.DecodeRequest(line)).ConfigureAwait(false);
                }
                catch (InvalidDataException e)
                {
                    response = ControlResponse.Failed(ControlErrorKind.Usage, e.Message);
                }

                await stream.WriteAsync(ControlCodec.Encode(response), _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or OperationCanceledException or SocketException)
        {
            if (!_stop.IsCancellationRequested)
            {
                _log($"control socket: connection ended: {e.Message}");
            }
        }
    }

    /// <summary>Stops listening, ends the connections (requests under way finish first) and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_connections.Keys).ConfigureAwait(false);
        if (File.Exists(_socketPath))
        {
            File.Delete(_socketPath);
        }

        _stop.Dispose();
    }
}
