using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace TurboOci.Testing.Registry;

/// <summary>How a test registry authenticates clients.</summary>
public enum RegistryAuth
{
    /// <summary>Anyone may pull and push.</summary>
    Anonymous,

    /// <summary>htpasswd (bcrypt) Basic auth.</summary>
    Basic,

    /// <summary>Bearer tokens from an in-process <see cref="TestTokenServer"/>, itself behind Basic auth.</summary>
    Token,
}

/// <summary>One line of the registry's access log.</summary>
public sealed record RegistryRequest(string Method, string Target, int Status, long Bytes)
{
    public string Path => Target.Split('?', 2)[0];
}

/// <summary>
/// A real CNCF distribution registry (Debian's <c>docker-registry</c>) on 127.0.0.1 with a free port and a
/// throw-away storage folder. The access log is captured so tests can count the requests a read caused.
/// Dispose kills the process and deletes its storage, also when the test failed; a process-exit hook
/// does the same if a test run is torn down without disposing.
/// </summary>
public sealed partial class RegistryServer : IDisposable, IAsyncDisposable
{
    public const string DefaultUser = "turbo-user";

    private static readonly ConcurrentDictionary<RegistryServer, bool> s_live = new();
    private static int s_hookInstalled;

    private readonly Process _process;
    private readonly ConcurrentQueue<RegistryRequest> _accessLog = new();
    private readonly ConcurrentQueue<string> _output = new();
    private int _disposed;

    private RegistryServer(string root, int port, Process process, RegistryAuth auth, string? password, TestTokenServer? tokens, string? certificatePath,
        bool requiresClientCertificate = false)
    {
        CertificatePath = certificatePath;
        if (requiresClientCertificate)
        {
            ClientCertificatePath = System.IO.Path.Combine(root, "client.crt");
            ClientKeyPath = System.IO.Path.Combine(root, "client.key");
        }

        Root = root;
        Port = port;
        _process = process;
        Auth = auth;
        Password = password;
        Tokens = tokens;
    }

    /// <summary>The temp folder holding config, htpasswd and the registry's storage.</summary>
    public string Root { get; }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, the registry part of an image reference.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public string BaseUrl => $"{(CertificatePath is null ? "http" : "https")}://{Host}";

    /// <summary>For a TLS registry: its self-signed certificate (PEM), the CA a client must be told to trust.</summary>
    public string? CertificatePath { get; }

    /// <summary>
    /// For a registry started by <see cref="StartMutualTlsAsync"/>: the client certificate (PEM) it accepts, and
    /// its key; the registry refuses TLS handshakes without it.
    /// </summary>
    public string? ClientCertificatePath { get; }

    public string? ClientKeyPath { get; }

    public RegistryAuth Auth { get; }

    /// <summary>The user name for Basic and Token auth.</summary>
    public string User => DefaultUser;

    /// <summary>The password for Basic and Token auth (random per server, so logs can be grepped for it).</summary>
    public string? Password { get; }

    /// <summary>The token realm for <see cref="RegistryAuth.Token"/>.</summary>
    public TestTokenServer? Tokens { get; }

    /// <summary>Every request the registry logged so far.</summary>
    public IReadOnlyCollection<RegistryRequest> AccessLog => _accessLog;

    /// <summary>All the registry printed (application log and access log).</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>Starts a registry and waits until <c>/v2/</c> answers.</summary>
    public static Task<RegistryServer> StartAsync(RegistryAuth auth = RegistryAuth.Anonymous, CancellationToken cancellationToken = default) =>
        StartCoreAsync(auth, tls: false, cancellationToken);

    /// <summary>
    /// Starts a registry that speaks only TLS, with a self-signed certificate for 127.0.0.1 made by openssl
    /// (<see cref="CertificatePath"/>), and waits until <c>/v2/</c> answers.
    /// </summary>
    public static Task<RegistryServer> StartTlsAsync(RegistryAuth auth = RegistryAuth.Anonymous, CancellationToken cancellationToken = default) =>
        StartCoreAsync(auth, tls: true, cancellationToken);

    /// <summary>
    /// Starts a TLS registry (as <see cref="StartTlsAsync"/>) that also requires a client certificate: the
    /// self-signed one at <see cref="ClientCertificatePath"/> (key at <see cref="ClientKeyPath"/>), made by openssl
    /// and configured as the registry's only client CA (<c>http.tls.clientcas</c>).
    /// </summary>
    public static Task<RegistryServer> StartMutualTlsAsync(RegistryAuth auth = RegistryAuth.Anonymous, CancellationToken cancellationToken = default) =>
        StartCoreAsync(auth, tls: true, cancellationToken, requireClientCertificate: true);

    private static async Task<RegistryServer> StartCoreAsync(RegistryAuth auth, bool tls, CancellationToken cancellationToken, bool requireClientCertificate = false)
    {
        var program = Tool.Which("docker-registry");
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var root = Directory.CreateTempSubdirectory("turbooci-registry-").FullName;
            TestTokenServer? tokens = null;
            try
            {
                var password = auth == RegistryAuth.Anonymous ? null : "pw-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant();
                var port = FreePort();
                var authYaml = "";
                if (auth == RegistryAuth.Basic)
                {
                    var htpasswd = Tool.RunChecked("htpasswd", ["-Bbn", DefaultUser, password!]).Stdout.Trim();
                    File.WriteAllText(System.IO.Path.Combine(root, "htpasswd"), htpasswd + "\n");
                    authYaml = $"auth:\n  htpasswd:\n    realm: turbooci-test\n    path: {root}/htpasswd\n";
                }
                else if (auth == RegistryAuth.Token)
                {
                    tokens = new TestTokenServer(root, DefaultUser, password);
                    authYaml = $"auth:\n  token:\n    realm: {tokens.Realm}\n    service: {TestTokenServer.Service}\n" +
                               $"    issuer: {TestTokenServer.Issuer}\n    rootcertbundle: {tokens.RootCertificatePath}\n";
                }

                string? certificate = null;
                var tlsYaml = "";
                if (tls)
                {
                    certificate = System.IO.Path.Combine(root, "registry.crt");
                    var key = System.IO.Path.Combine(root, "registry.key");
                    Tool.RunChecked("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", key, "-out", certificate,
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"]);
                    tlsYaml = $"\n  tls:\n    certificate: {certificate}\n    key: {key}";
                    if (requireClientCertificate)
                    {
                        var clientCertificate = System.IO.Path.Combine(root, "client.crt");
                        Tool.RunChecked("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", System.IO.Path.Combine(root, "client.key"),
                            "-out", clientCertificate, "-subj", "/CN=turbooci-test-client", "-addext", "extendedKeyUsage=clientAuth"]);
                        tlsYaml += $"\n    clientcas:\n      - {clientCertificate}";
                    }
                }

                var config = $"""
                    version: 0.1
                    log:
                      level: info
                      formatter: text
                      accesslog:
                        disabled: false
                    storage:
                      filesystem:
                        rootdirectory: {root}/storage
                      delete:
                        enabled: true
                      redirect:
                        disable: true
                    http:
                      addr: 127.0.0.1:{port}
                      secret: {Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}{tlsYaml}
                    {authYaml}
                    """;
                var configPath = System.IO.Path.Combine(root, "config.yml");
                File.WriteAllText(configPath, config);

                var startInfo = new ProcessStartInfo(program)
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                startInfo.ArgumentList.Add("serve");
                startInfo.ArgumentList.Add(configPath);
                var process = new Process { StartInfo = startInfo };
                var server = new RegistryServer(root, port, process, auth, password, tokens, certificate, requireClientCertificate);
                process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
                process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
                process.Start();
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                Track(server);
                try
                {
                    await server.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false);
                    return server;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    last = new InvalidOperationException($"docker-registry did not start: {e.Message}\n{server.Output}", e);
                    await server.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch when (DeleteQuietly(root, tokens))
            {
                throw;
            }
        }

        throw last!;
    }

    /// <summary>Requests logged whose path matches, e.g. <c>/v2/repo/blobs/sha256:...</c>.</summary>
    public IReadOnlyList<RegistryRequest> RequestsFor(string pathPrefix, string? method = null) =>
        _accessLog.Where(r => r.Path.StartsWith(pathPrefix, StringComparison.Ordinal) && (method is null || r.Method == method)).ToList();

    /// <summary>
    /// Waits until the access log has been quiet for <paramref name="quiet"/>: the registry writes a line
    /// after the response went out, so a count taken right after a read could miss the last one.
    /// </summary>
    public async Task SettleAccessLogAsync(TimeSpan? quiet = null)
    {
        var window = quiet ?? TimeSpan.FromMilliseconds(150);
        var count = -1;
        while (count != _accessLog.Count)
        {
            count = _accessLog.Count;
            await Task.Delay(window).ConfigureAwait(false);
        }
    }

    /// <summary>An HttpClient for the harness's own pushes and checks: Basic or bearer credentials pre-set.</summary>
    public async Task<HttpClient> CreateAuthorizedClientAsync(string repository, CancellationToken cancellationToken = default)
    {
        var client = NewHttpClient(TimeSpan.FromMinutes(5));
        client.BaseAddress = new Uri(BaseUrl);
        switch (Auth)
        {
            case RegistryAuth.Basic:
                client.DefaultRequestHeaders.Authorization = BasicHeader();
                break;
            case RegistryAuth.Token:
                using (var tokenRequest = new HttpRequestMessage(HttpMethod.Get,
                           $"{Tokens!.Realm}?service={TestTokenServer.Service}&scope=repository:{repository}:pull,push"))
                {
                    tokenRequest.Headers.Authorization = BasicHeader();
                    using var response = await client.SendAsync(tokenRequest, cancellationToken).ConfigureAwait(false);
                    response.EnsureSuccessStatusCode();
                    using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
                    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", json.RootElement.GetProperty("token").GetString());
                }

                break;
        }

        return client;
    }

    /// <summary>Pushes one blob with a monolithic upload (POST then PUT ?digest=) and returns its digest.</summary>
    public async Task<string> PushBlobAsync(string repository, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var digest = "sha256:" + Convert.ToHexString(SHA256.HashData(content.Span)).ToLowerInvariant();
        using var client = await CreateAuthorizedClientAsync(repository, cancellationToken).ConfigureAwait(false);
        using var start = await client.PostAsync($"/v2/{repository}/blobs/uploads/", null, cancellationToken).ConfigureAwait(false);
        if (start.StatusCode != HttpStatusCode.Accepted || start.Headers.Location is not { } location)
        {
            throw new InvalidOperationException($"upload start answered {(int)start.StatusCode}");
        }

        var target = location.IsAbsoluteUri ? location : new Uri(client.BaseAddress!, location);
        var separator = target.Query.Length > 0 ? "&" : "?";
        using var body = new ReadOnlyMemoryContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var put = await client.PutAsync(new Uri(target + separator + "digest=" + Uri.EscapeDataString(digest)), body, cancellationToken).ConfigureAwait(false);
        if (put.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"upload of {digest} answered {(int)put.StatusCode}");
        }

        return digest;
    }

    /// <summary>Pushes an OCI image layout with skopeo, the independent reference client.</summary>
    public void PushOciLayout(string layoutDirectory, string layoutTag, string repository, string tag)
    {
        var args = new List<string> { "copy", "--dest-tls-verify=false", "--insecure-policy" };
        if (Password is not null)
        {
            args.Add($"--dest-creds={User}:{Password}");
        }

        args.Add($"oci:{layoutDirectory}:{layoutTag}");
        args.Add($"docker://{Host}/{repository}:{tag}");
        Tool.RunChecked("skopeo", args, timeout: TimeSpan.FromMinutes(3));
    }

    /// <summary>skopeo's credential option for this registry, or nothing when anonymous.</summary>
    public IEnumerable<string> SkopeoCredentials(string option) =>
        Password is null ? [] : [$"{option}={User}:{Password}"];

    public AuthenticationHeaderValue BasicHeader() =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}")));

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var client = NewHttpClient(TimeSpan.FromSeconds(2));
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"docker-registry exited with code {_process.ExitCode}");
            }

            try
            {
                using var response = await client.GetAsync($"{BaseUrl}/v2/", cancellationToken).ConfigureAwait(false);
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("docker-registry did not answer /v2/ within 30 s");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The harness's own client: for a TLS registry it trusts exactly this registry's certificate.</summary>
    private HttpClient NewHttpClient(TimeSpan timeout)
    {
        var handler = new HttpClientHandler();
        if (CertificatePath is not null)
        {
            var expected = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(CertificatePath));
            handler.ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.RawData.AsSpan().SequenceEqual(expected.RawData);
        }

        if (ClientCertificatePath is not null)
        {
            handler.ClientCertificateOptions = ClientCertificateOption.Manual;
            handler.ClientCertificates.Add(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(ClientCertificatePath, ClientKeyPath));
        }

        return new HttpClient(handler, disposeHandler: true) { Timeout = timeout };
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        var match = AccessLogLine().Match(line);
        if (match.Success)
        {
            _accessLog.Enqueue(new RegistryRequest(
                match.Groups["method"].Value,
                match.Groups["target"].Value,
                int.Parse(match.Groups["status"].Value, CultureInfo.InvariantCulture),
                long.TryParse(match.Groups["bytes"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? bytes : 0));
        }
    }

    // Apache combined log format, written by the registry's access logger:
    // 127.0.0.1 - - [28/Nov/2026:08:44:10 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "agent"
    [GeneratedRegex("\"(?<method>[A-Z]+) (?<target>\\S+) HTTP/[0-9.]+\" (?<status>\\d{3}) (?<bytes>\\d+|-)")]
    private static partial Regex AccessLogLine();

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Track(RegistryServer server)
    {
        s_live[server] = true;
        if (Interlocked.Exchange(ref s_hookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var live in s_live.Keys)
                {
                    live.Dispose();
                }
            };
        }
    }

    private static bool DeleteQuietly(string root, IDisposable? tokens)
    {
        tokens?.Dispose();
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }

        return false;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        s_live.TryRemove(this, out _);
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // never started
        }

        _process.Dispose();
        DeleteQuietly(Root, Tokens);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
