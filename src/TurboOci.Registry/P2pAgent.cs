using System.Net.Sockets;

namespace TurboOci.Registry;

/// <summary>
/// overlaybd's P2P acceleration (<c>p2pConfig</c> in overlaybd.json), so a node's P2P agent (Dragonfly's
/// dfdaemon, DADI's P2P proxy) works with us unchanged:
/// <list type="bullet">
/// <item>The blob URL is first resolved against the registry directly, with credentials and without following
/// redirects: a 3xx names the storage URL, a 2xx means the registry serves the bytes itself.</item>
/// <item>The bytes are then asked from <c>address + "/" + that URL</c> (the URL appended verbatim, its query
/// included), with the Range header; the registry's Authorization goes along only when the URL is the
/// registry's own, never for a storage URL, and only to the agent's own origin.</item>
/// <item>A failed answer from the agent drops the resolution; the retry (same budget as for the registry)
/// resolves again. There is no per-request fallback to the registry, as in overlaybd.</item>
/// <item>Whether to use the agent at all is decided when a blob is opened (<see cref="RegistryBlobStore"/>,
/// the CLI): if nothing accepts connections at the address, blobs are read directly from the registry
/// through the local cache. With the agent in use the local range cache is bypassed, the agent being the
/// node's cache.</item>
/// </list>
/// Manifests, HEADs, tokens and uploads always go to the registry directly. A <see cref="RegistryClient"/>
/// given a <see cref="RegistryClientOptions.P2pAddress"/> uses the agent for every blob GET, unchecked.
/// </summary>
public static class P2pAgent
{
    /// <summary>How long the reachability check waits for the agent's TCP handshake.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The address as a URL prefix: overlaybd's form <c>host:port/path</c> (no scheme means http, as photon's
    /// URL parser reads it) or <c>http(s)://host[:port][/path]</c>. Kept verbatim otherwise: a trailing slash
    /// stays and gives the double slash overlaybd would send.
    /// </summary>
    public static string Normalize(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var prefix = address.Contains("://", StringComparison.Ordinal) ? address : "http://" + address;
        if (!Uri.TryCreate(prefix, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0 ||
            uri.Query.Length > 0 || uri.Fragment.Length > 0 || prefix.Any(char.IsWhiteSpace))
        {
            throw new FormatException($"P2P address '{address}' is not host:port[/path] or http(s)://host[:port][/path]");
        }

        return prefix;
    }

    /// <summary>The URL the agent is asked for the bytes at <paramref name="source"/>.</summary>
    public static Uri UrlFor(string address, Uri source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new Uri(Normalize(address) + "/" + source.AbsoluteUri);
    }

    /// <summary>
    /// Whether something accepts TCP connections at the agent's host and port: overlaybd's check before it
    /// routes an image's blobs through the agent.
    /// </summary>
    public static async Task<bool> IsReachableAsync(string address, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var uri = new Uri(Normalize(address));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(uri.DnsSafeHost, uri.Port, deadline.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
        finally
        {
            // Back to the thread pool, as RegistryClient's calls return (see RegistryClient.ExecuteAsync).
            await Task.Yield();
        }
    }
}
