using System.Net.Sockets;

namespace TurboOci.Frontends;

/// <summary>
/// The accept loop every socket server of ours runs (the NBD server, the daemon's control socket): it accepts
/// until <c>stop</c> is cancelled, reports a failed accept and goes on (a client that reset before it was
/// accepted must not end the server), and closes a client at once while the server is at its connection limit.
/// </summary>
public static class SocketAcceptLoop
{
    /// <summary>
    /// Accepts clients of <paramref name="listener"/> and hands each to <paramref name="serve"/>, which must start
    /// serving it without waiting for the end (the loop accepts the next client when it returns). A client that
    /// arrives while <paramref name="atCapacity"/> says true is closed unserved. Ends when <paramref name="stop"/> is cancelled.
    /// </summary>
    public static async Task RunAsync(
        Socket listener,
        Func<bool> atCapacity,
        Action<Socket> serve,
        Action<Exception> acceptFailed,
        CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (stop.IsCancellationRequested)
                {
                    return;
                }

                acceptFailed(e);
                continue;
            }

            if (atCapacity())
            {
                client.Dispose();
                continue;
            }

            serve(client);
        }
    }
}
