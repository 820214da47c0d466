using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace TurboOci.Testing.Registry;

/// <summary>
/// A P2P agent on 127.0.0.1 that serves overlaybd's P2P URL form the way DADI's P2P proxy and Dragonfly's
/// dfdaemon do: a GET of <c>/PREFIX/ORIGINAL-URL</c> (the original URL appended verbatim, query included) is
/// fetched from ORIGINAL-URL with the client's headers forwarded (Range, Authorization), and the origin's
/// answer is passed back (status, Content-Range, body). Every request is recorded; <see cref="Plan"/> can
/// answer a request with an error status instead, to test the client's retries.
/// </summary>
public sealed class LoopbackP2pAgent : IAsyncDisposable, IDisposable
{
    private static readonly HashSet<string> s_notForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Proxy-Connection", "Content-Length", "Expect",
    };

    private readonly HttpClient _origin = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false }) { Timeout = TimeSpan.FromMinutes(2) };
    private readonly LoopbackHttpServer _http;
    private readonly ConcurrentQueue<LoopbackRequest> _requests = new();
    private readonly ConcurrentQueue<string> _originUrls = new();
    private int _sequence;
    private int _disposed;

    /// <param name="prefix">The path the agent serves under, as in overlaybd's <c>localhost:19145/dadip2p</c> ("" for none).</param>
    public LoopbackP2pAgent(string prefix = "accelerator")
    {
        Prefix = prefix;
        _http = new LoopbackHttpServer(HandleAsync);
    }

    public string Prefix { get; }

    /// <summary>The address in overlaybd's <c>p2pConfig.address</c> form, without a scheme: <c>127.0.0.1:PORT/PREFIX</c>.</summary>
    public string Address => Prefix.Length == 0 ? $"127.0.0.1:{_http.Port}" : $"127.0.0.1:{_http.Port}/{Prefix}";

    public int Port => _http.Port;

    /// <summary>Given a request and its 1-based number, a status to answer with instead of fetching (null: fetch).</summary>
    public Func<LoopbackRequest, int, int?> Plan { get; set; } = (_, _) => null;

    /// <summary>When set (<c>http://host:port</c>), every request is answered 307 to the same target there: an agent handing a client to a peer.</summary>
    public string? RedirectTo { get; set; }

    /// <summary>Every request that reached the agent, in arrival order.</summary>
    public IReadOnlyCollection<LoopbackRequest> Requests => _requests;

    /// <summary>The original URLs the agent parsed from the requests and fetched.</summary>
    public IReadOnlyCollection<string> OriginUrls => _originUrls;

    private async Task<bool> HandleAsync(LoopbackRequest request, Stream stream, Socket socket, CancellationToken cancellationToken)
    {
        _requests.Enqueue(request);
        var lead = Prefix.Length == 0 ? "/" : $"/{Prefix}/";
        if (request.Method != "GET" || !request.Target.StartsWith(lead, StringComparison.Ordinal) ||
            !Uri.TryCreate(request.Target[lead.Length..], UriKind.Absolute, out var origin) || origin.Scheme is not ("http" or "https"))
        {
            await LoopbackHttpServer.WriteResponseAsync(stream, 400, "Bad Request", null, "not an agent URL"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (Plan(request, Interlocked.Increment(ref _sequence)) is { } status)
        {
            await LoopbackHttpServer.WriteResponseAsync(stream, status, "Injected", null, default, cancellationToken).ConfigureAwait(false);
            return true;
        }

        if (RedirectTo is { } peer)
        {
            await LoopbackHttpServer.WriteResponseAsync(stream, 307, "Temporary Redirect", [new("Location", peer + request.Target)], default, cancellationToken).ConfigureAwait(false);
            return true;
        }

        _originUrls.Enqueue(origin.OriginalString);
        using var forward = new HttpRequestMessage(HttpMethod.Get, origin);
        foreach (var (name, value) in request.Headers)
        {
            if (!s_notForwarded.Contains(name))
            {
                forward.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _origin.SendAsync(forward, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var headers = response.Headers.Concat(response.Content.Headers)
            .Where(h => !s_notForwarded.Contains(h.Key))
            .Select(h => new KeyValuePair<string, string>(h.Key, string.Join(", ", h.Value)))
            .Append(new("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)))
            .ToList();
        await LoopbackHttpServer.WriteResponseAsync(stream, (int)response.StatusCode, response.ReasonPhrase ?? "OK", headers, body, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on (bound, then released).</summary>
    public static int UnusedPort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    /// <summary>Stops the agent (a test may stop it early to play an agent going down); a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _http.DisposeAsync().ConfigureAwait(false);
        _origin.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
