using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;

namespace TurboOci.Registry;

public sealed partial class RegistryClient
{
    // Where a blob URL's bytes are asked from the P2P agent, as overlaybd keeps it per URL (its UrlInfo): the
    // storage URL the registry redirected to, or the registry's own URL (then sent with its Authorization).
    private readonly ConcurrentDictionary<string, P2pRoute> _p2pRoutes = new(StringComparer.Ordinal);

    /// <summary>How long a blob URL the registry serves itself keeps going to the agent without asking the
    /// registry again: overlaybd's 300 s (kMinimalAUrlLife). Storage URLs keep <see cref="RegistryClientOptions.RedirectCacheLifetime"/>.</summary>
    private static readonly TimeSpan s_registryRouteLifetime = TimeSpan.FromSeconds(300);

    private sealed record P2pRoute(Uri Source, bool IsRegistry, DateTimeOffset Expires);

    /// <summary>
    /// A blob GET through the P2P agent, the way overlaybd's registryfs does it (see <see cref="P2pAgent"/>):
    /// resolve the blob URL against the registry once (credentials, no redirect followed), then ask the agent
    /// for <c>address/URL</c> with the Range. An answer the call cannot use drops the resolution, so the next
    /// attempt resolves again; a registry answer that is neither success nor redirect is returned as is, so
    /// 401s re-authenticate and 5xx retry exactly as for a direct call.
    /// </summary>
    private async Task<HttpResponseMessage> SendViaP2pAsync(Call call, Uri original, string agentAddress, AuthenticationHeaderValue? authorization,
        HttpClient registryClient, CancellationToken cancellationToken)
    {
        var key = original.AbsoluteUri;
        if (!_p2pRoutes.TryGetValue(key, out var route) || route.Expires <= DateTimeOffset.UtcNow)
        {
            using var resolve = new HttpRequestMessage(HttpMethod.Get, original);
            resolve.Headers.UserAgent.ParseAdd(_options.UserAgent);
            resolve.Headers.Range = new RangeHeaderValue(0, 0);
            resolve.Headers.Authorization = authorization;
            Interlocked.Increment(ref _requests);
            var answer = await registryClient.SendAsync(resolve, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (RedirectTarget(call, answer, original, hop: 0) is { } storage)
            {
                route = new P2pRoute(storage, IsRegistry: false, DateTimeOffset.UtcNow + _options.RedirectCacheLifetime);
            }
            else if (answer.IsSuccessStatusCode)
            {
                answer.Dispose();
                route = new P2pRoute(original, IsRegistry: true, DateTimeOffset.UtcNow + s_registryRouteLifetime);
            }
            else
            {
                return answer;
            }

            _p2pRoutes[key] = route;
        }

        var agent = P2pAgent.UrlFor(agentAddress, route.Source);
        var client = ClientFor(null);
        var target = agent;
        for (var hop = 0; ; hop++)
        {
            using var request = NewRequest(call, target, hop);

            // As overlaybd: the registry's credentials ride along only for the registry's own URL (the agent
            // fetches it with them), never for a storage URL; and never beyond the agent's own origin.
            if (route.IsRegistry && authorization is not null && SameOrigin(target, agent))
            {
                request.Headers.Authorization = authorization;
            }

            Interlocked.Increment(ref _requests);
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (RedirectTarget(call, response, target, hop) is { } next)
            {
                target = next;
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                _p2pRoutes.TryRemove(key, out _);
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    // The agent passes the registry's refusal on, often without its challenge: the next attempt
                    // resolves against the registry itself, which re-authenticates when the token expired.
                    var status = (int)response.StatusCode;
                    response.Dispose();
                    throw new TransientException($"{call.Describe}: the P2P agent answered {status}");
                }
            }

            return response;
        }
    }
}
