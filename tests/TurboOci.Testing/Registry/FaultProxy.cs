using System.Collections.Concurrent;
using System.Net.Sockets;

namespace TurboOci.Testing.Registry;

/// <summary>A misbehaviour the <see cref="FaultProxy"/> applies to one request.</summary>
public abstract record Fault
{
    private Fault()
    {
    }

    /// <summary>Answer with this status and an empty body instead of forwarding (5xx, 429 with Retry-After).</summary>
    public sealed record Status(int Code, int? RetryAfterSeconds = null) : Fault;

    /// <summary>Forward, send the head and the first <paramref name="Bytes"/> of the body, then reset the connection.</summary>
    public sealed record ResetAfter(int Bytes) : Fault;

    /// <summary>Forward, send the head with the full Content-Length but only <paramref name="Bytes"/> of the body, then close cleanly.</summary>
    public sealed record Truncate(int Bytes) : Fault;

    /// <summary>Wait this long before answering (then forward normally, unless the client gave up).</summary>
    public sealed record Stall(TimeSpan Delay) : Fault;

    /// <summary>Forward, but flip every bit of the body byte at <paramref name="Offset"/> (clamped to the body).</summary>
    public sealed record CorruptByte(int Offset) : Fault;

    /// <summary>Answer 307 with this Location instead of forwarding.</summary>
    public sealed record Redirect(string Location) : Fault;
}

/// <summary>
/// An HTTP proxy on 127.0.0.1 between a client under test and an upstream (usually a <see cref="RegistryServer"/>):
/// forwards each request, unless the plan returns a <see cref="Fault"/> for it. The plan sees the request and
/// its 1-based sequence number, so tests can script bursts ("the first three blob GETs fail").
/// </summary>
public sealed class FaultProxy : IAsyncDisposable, IDisposable
{
    private static readonly HashSet<string> s_hopHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Proxy-Connection", "Content-Length", "Content-Type", "Expect",
    };

    private readonly Uri _upstream;
    private readonly HttpClient _client;
    private readonly LoopbackHttpServer _http;
    private readonly ConcurrentQueue<LoopbackRequest> _requests = new();
    private int _sequence;

    public FaultProxy(string upstreamBaseUrl, Func<LoopbackRequest, int, Fault?>? plan = null)
    {
        _upstream = new Uri(upstreamBaseUrl);
        Plan = plan ?? ((_, _) => null);
        _client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false }) { Timeout = TimeSpan.FromMinutes(5) };
        _http = new LoopbackHttpServer(HandleAsync);
    }

    /// <summary>Decides the fault for each request; may be swapped between phases of a test.</summary>
    public Func<LoopbackRequest, int, Fault?> Plan { get; set; }

    public string Host => $"127.0.0.1:{_http.Port}";

    public string BaseUrl => _http.BaseUrl;

    /// <summary>Every request that reached the proxy, in arrival order.</summary>
    public IReadOnlyCollection<LoopbackRequest> Requests => _requests;

    private async Task<bool> HandleAsync(LoopbackRequest request, Stream stream, Socket socket, CancellationToken cancellationToken)
    {
        _requests.Enqueue(request);
        var fault = Plan(request, Interlocked.Increment(ref _sequence));
        switch (fault)
        {
            case Fault.Status status:
                var headers = status.RetryAfterSeconds is { } seconds ? new[] { new KeyValuePair<string, string>("Retry-After", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)) } : [];
                await LoopbackHttpServer.WriteResponseAsync(stream, status.Code, "Injected", headers, default, cancellationToken).ConfigureAwait(false);
                return true;
            case Fault.Redirect redirect:
                await LoopbackHttpServer.WriteResponseAsync(stream, 307, "Temporary Redirect", [new("Location", redirect.Location)], default, cancellationToken).ConfigureAwait(false);
                return true;
            case Fault.Stall stall:
                await Task.Delay(stall.Delay, cancellationToken).ConfigureAwait(false);
                break;
        }

        using var upstreamRequest = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(_upstream, request.Target));
        if (request.Body.Length > 0 || request.Method is "PUT" or "POST" or "PATCH")
        {
            upstreamRequest.Content = new ByteArrayContent(request.Body);
            if (request.Header("Content-Type") is { } contentType)
            {
                upstreamRequest.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
        }

        foreach (var (name, value) in request.Headers)
        {
            if (!s_hopHeaders.Contains(name))
            {
                upstreamRequest.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _client.SendAsync(upstreamRequest, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var responseHeaders = response.Headers.Concat(response.Content.Headers)
            .Where(h => !s_hopHeaders.Contains(h.Key))
            .Select(h => new KeyValuePair<string, string>(h.Key, string.Join(", ", h.Value)))
            .Append(new("Content-Length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        if (response.Content.Headers.ContentType is { } type)
        {
            responseHeaders.Add(new("Content-Type", type.ToString()));
        }

        var headOnly = request.Method == "HEAD";
        if (headOnly && response.Content.Headers.ContentLength is { } length)
        {
            responseHeaders[responseHeaders.FindIndex(h => h.Key == "Content-Length")] = new("Content-Length", length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        switch (fault)
        {
            case Fault.CorruptByte corrupt when body.Length > 0:
                body[Math.Clamp(corrupt.Offset, 0, body.Length - 1)] ^= 0xFF;
                break;
            case Fault.ResetAfter reset:
                await WritePartialAsync(stream, response, responseHeaders, body, reset.Bytes, cancellationToken).ConfigureAwait(false);
                LoopbackHttpServer.Reset(socket);
                return false;
            case Fault.Truncate truncate:
                await WritePartialAsync(stream, response, responseHeaders, body, truncate.Bytes, cancellationToken).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Both);
                return false;
        }

        await LoopbackHttpServer.WriteResponseAsync(stream, (int)response.StatusCode, response.ReasonPhrase ?? "OK", responseHeaders, body, cancellationToken, headOnly).ConfigureAwait(false);
        return true;
    }

    private static async Task WritePartialAsync(Stream stream, HttpResponseMessage response, List<KeyValuePair<string, string>> headers, byte[] body, int bytes, CancellationToken cancellationToken)
    {
        // Write the head promising the whole body, then only part of it.
        await LoopbackHttpServer.WriteResponseAsync(stream, (int)response.StatusCode, response.ReasonPhrase ?? "OK", headers, default, cancellationToken, headOnly: true).ConfigureAwait(false);
        await stream.WriteAsync(body.AsMemory(0, Math.Clamp(bytes, 0, body.Length)), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _http.DisposeAsync().ConfigureAwait(false);
        _client.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
