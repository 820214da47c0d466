using System.Net.Sockets;

namespace TurboOci.Daemon;

/// <summary>Sends requests to a daemon's control socket.</summary>
public static class ControlClient
{
    /// <summary>Whether a daemon answers on <paramref name="socketPath"/> (a leftover socket file of a dead one does not).</summary>
    public static bool IsRunning(string socketPath)
    {
        try
        {
            using var socket = Connect(socketPath);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Sends one request and waits for its response (attaching a large stack may take a while).</summary>
    /// <exception cref="SocketException">No daemon listens on the socket.</exception>
    public static async Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken cancellationToken)
    {
        using var socket = Connect(socketPath);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(ControlCodec.Encode(request), cancellationToken).ConfigureAwait(false);
        var line = await new ControlLineReader(stream).ReadLineAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new IOException($"the daemon on {socketPath} closed the connection without answering");
        return ControlCodec.DecodeResponse(line);
    }

    private static Socket Connect(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            throw new SocketException((int)SocketError.AddressNotAvailable);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
