using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace TurboOci.Registry;

/// <summary>The credential source an overlaybd node config names (<c>credentialConfig</c>).</summary>
public static class OverlaybdCredentials
{
    /// <summary>
    /// File mode: the Docker-style credential file (a missing file means no credentials); http/https/uds:
    /// a credential server asked per registry; <c>none</c>: null.
    /// </summary>
    public static ICredentialProvider? For(OverlaybdConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.CredentialMode switch
        {
            "file" when config.CredentialFilePath.Length > 0 => new DockerConfigCredentialProvider(config.CredentialFilePath),
            "http" or "https" or "uds" => new CredentialServerProvider(config),
            _ => null,
        };
    }
}

/// <summary>
/// overlaybd's credential server protocol: <c>GET &lt;path&gt;?remote_url=&lt;URL&gt;</c> (http, https with optional
/// mTLS and its own CA, or <c>http://localhost/auth?remote_url=...</c> over a Unix socket), answered with
/// <c>{"traceId": .., "success": true, "data": {"auths": {...}}}</c>. Answers are kept for a minute per
/// registry; a failed or unsuccessful answer means no credential (the registry then decides).
/// </summary>
public sealed class CredentialServerProvider : ICredentialProvider, IDisposable
{
    private const int MaxAnswerBytes = 1024 * 1024;
    private static readonly TimeSpan s_answerLifetime = TimeSpan.FromMinutes(1);

    private readonly HttpClient _http;
    private readonly string _mode;
    private readonly string _endpoint;
    private readonly ConcurrentDictionary<string, (RegistryCredential? Credential, DateTimeOffset Expires)> _answers = new(StringComparer.OrdinalIgnoreCase);

    public CredentialServerProvider(OverlaybdConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _mode = config.CredentialMode;
        if (_mode is not ("http" or "https" or "uds"))
        {
            throw new ArgumentException($"credential mode '{_mode}' is not a server mode", nameof(config));
        }

        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false };
        switch (_mode)
        {
            case "uds":
                var socketPath = config.CredentialServer;
                handler.ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                };
                _endpoint = "http://localhost/auth";
                break;
            case "https":
                _endpoint = config.CredentialServer;
                if (config.CredentialServerCaPath.Length > 0)
                {
                    handler.SslOptions.RemoteCertificateValidationCallback = TrustedCertificates.FromPemFile(config.CredentialServerCaPath).Validate;
                }

                if (config.CredentialClientCertPath.Length > 0)
                {
                    var certificate = X509Certificate2.CreateFromPemFile(config.CredentialClientCertPath,
                        config.CredentialClientKeyPath.Length > 0 ? config.CredentialClientKeyPath : null);
                    handler.SslOptions.ClientCertificates = [certificate];
                }

                break;
            default:
                _endpoint = config.CredentialServer.Contains("://", StringComparison.Ordinal) ? config.CredentialServer : "http://" + config.CredentialServer;
                break;
        }

        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(config.CredentialTimeoutSeconds) };
    }

    public RegistryCredential? Find(string registry)
    {
        if (_answers.TryGetValue(registry, out var answer) && answer.Expires > DateTimeOffset.UtcNow)
        {
            return answer.Credential;
        }

        var credential = Ask(registry);
        _answers[registry] = (credential, DateTimeOffset.UtcNow + s_answerLifetime);
        return credential;
    }

    private RegistryCredential? Ask(string registry)
    {
        // overlaybd sends the blob URL; the registry's API root names the same host, which is what the answer is keyed by.
        var remoteUrl = $"https://{registry}/v2/";
        var url = _endpoint + (_endpoint.Contains('?') ? "&" : "?") + "remote_url=" + Uri.EscapeDataString(remoteUrl);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = _http.Send(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode || response.Content.Headers.ContentLength > MaxAnswerBytes)
            {
                return null;
            }

            using var body = response.Content.ReadAsStream();
            using var bounded = new BoundedMemoryStream(MaxAnswerBytes, "credential server answer");
            body.CopyTo(bounded);
            using var document = JsonDocument.Parse(bounded.ToArray());
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("success", out var success) || success.ValueKind != JsonValueKind.True ||
                !root.TryGetProperty("data", out var data))
            {
                return null;
            }

            return new DockerConfigCredentialProvider(data, $"{_mode} credential server").Find(registry);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or TaskCanceledException or InvalidDataException or SocketException)
        {
            return null;
        }
    }

    public void Dispose() => _http.Dispose();
}
