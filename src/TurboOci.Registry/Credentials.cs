using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace TurboOci.Registry;

/// <summary>A user name and secret for one registry. ToString never shows the secret.</summary>
public sealed record RegistryCredential(string Username, string Secret)
{
    /// <summary>An identity token (Docker's <c>&lt;token&gt;</c> user) is used as an OAuth refresh token, not a password.</summary>
    public bool IsIdentityToken => Username == "<token>";

    public override string ToString() => $"{Username}:***";
}

/// <summary>Where credentials for a registry host come from.</summary>
public interface ICredentialProvider
{
    /// <summary>The credential for a registry as named in references (<c>docker.io</c>, <c>host:port</c>), or null.</summary>
    RegistryCredential? Find(string registry);
}

/// <summary>One fixed credential for every registry, or for one registry: <c>--username/--password</c>.</summary>
public sealed class StaticCredentialProvider(RegistryCredential credential, string? registry = null) : ICredentialProvider
{
    public RegistryCredential? Find(string registry1) => registry is null || registry == registry1 ? credential : null;
}

/// <summary>Tries several providers in order; the first answer wins.</summary>
public sealed class ChainedCredentialProvider(params ICredentialProvider[] providers) : ICredentialProvider
{
    public RegistryCredential? Find(string registry) => providers.Select(p => p.Find(registry)).FirstOrDefault(c => c is not null);
}

/// <summary>
/// Credentials as Docker keeps them in <c>~/.docker/config.json</c>: <c>credHelpers</c> (per registry) and
/// <c>credsStore</c> (default) name <c>docker-credential-NAME</c> programs that answer <c>get</c> with
/// <c>{"Username","Secret"}</c>; <c>auths</c> holds base64 <c>user:password</c> (or username/password fields).
/// The same document shape is overlaybd's credential file.
/// </summary>
public sealed class DockerConfigCredentialProvider : ICredentialProvider
{
    private const int MaxConfigBytes = 4 * 1024 * 1024;
    private static readonly TimeSpan s_helperTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, RegistryCredential> _auths = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _helpers = new(StringComparer.OrdinalIgnoreCase);
    private string? _store;
    private readonly string? _helperDirectory;

    /// <param name="path">The config.json to read; a missing file means "no credentials".</param>
    /// <param name="helperDirectory">Where docker-credential-* programs live; null searches PATH.</param>
    public DockerConfigCredentialProvider(string path, string? helperDirectory = null)
    {
        Path = path;
        _helperDirectory = helperDirectory;
        if (!File.Exists(path))
        {
            return;
        }

        if (new FileInfo(path).Length > MaxConfigBytes)
        {
            throw new InvalidDataException($"{path}: credential file larger than {MaxConfigBytes} bytes");
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        Load(document.RootElement, allowHelpers: true);
    }

    /// <summary>
    /// Credentials from a parsed Docker-style document (overlaybd's credential servers answer one under
    /// <c>data</c>): only <c>auths</c>, since a document from elsewhere must not choose programs for us to run.
    /// </summary>
    public DockerConfigCredentialProvider(JsonElement document, string origin)
    {
        Path = origin;
        if (document.ValueKind == JsonValueKind.Object)
        {
            Load(document, allowHelpers: false);
        }
    }

    private void Load(JsonElement root, bool allowHelpers)
    {
        try
        {
            LoadEntries(root, allowHelpers);
        }
        catch (InvalidOperationException e)
        {
            // JsonElement.GetString on a string that is not valid UTF-8.
            throw new InvalidDataException($"{Path}: credential document holds text that is not valid UTF-8", e);
        }
    }

    private void LoadEntries(JsonElement root, bool allowHelpers)
    {
        if (root.TryGetProperty("auths", out var auths) && auths.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in auths.EnumerateObject())
            {
                // First match wins, in document order, as overlaybd reads this file.
                if (ParseAuth(entry.Value) is { } credential && !_auths.ContainsKey(NormalizeKey(entry.Name)))
                {
                    _auths[NormalizeKey(entry.Name)] = credential;
                }
            }
        }

        if (!allowHelpers)
        {
            return;
        }

        if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in helpers.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.String))
            {
                _helpers[NormalizeKey(entry.Name)] = entry.Value.GetString()!;
            }
        }

        if (root.TryGetProperty("credsStore", out var store) && store.ValueKind == JsonValueKind.String)
        {
            _store = store.GetString();
        }
    }

    public string Path { get; }

    /// <summary>The default Docker location: <c>$DOCKER_CONFIG/config.json</c> or <c>~/.docker/config.json</c>.</summary>
    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } dir
            ? System.IO.Path.Combine(dir, "config.json")
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker", "config.json");

    public RegistryCredential? Find(string registry)
    {
        var key = registry == ImageReference.DockerHubName ? NormalizeKey(ImageReference.DockerHubCredentialKey) : registry;
        if (_helpers.TryGetValue(key, out var helper))
        {
            return RunHelper(helper, ServerUrl(registry));
        }

        if (_store is { Length: > 0 } && RunHelper(_store, ServerUrl(registry)) is { } stored)
        {
            return stored;
        }

        return _auths.GetValueOrDefault(key);
    }

    private static string ServerUrl(string registry) => registry == ImageReference.DockerHubName ? ImageReference.DockerHubCredentialKey : registry;

    /// <summary>Keys may be URLs (<c>https://host/v1/</c>) or bare hosts; we compare hosts.</summary>
    private static string NormalizeKey(string key)
    {
        var host = key;
        if (host.Contains("://", StringComparison.Ordinal))
        {
            host = host[(host.IndexOf("://", StringComparison.Ordinal) + 3)..];
        }

        host = host.Split('/')[0];
        return host is "index.docker.io" or ImageReference.DockerHubEndpoint ? ImageReference.DockerHubName : host;
    }

    private static RegistryCredential? ParseAuth(JsonElement entry)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (entry.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } encoded)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            }
            catch (FormatException)
            {
                throw new InvalidDataException("credential file: an 'auth' value is not base64");
            }

            var colon = decoded.IndexOf(':');
            if (colon < 0)
            {
                throw new InvalidDataException("credential file: an 'auth' value is not user:password");
            }

            return new RegistryCredential(decoded[..colon], decoded[(colon + 1)..]);
        }

        if (entry.TryGetProperty("identitytoken", out var identity) && identity.ValueKind == JsonValueKind.String)
        {
            return new RegistryCredential("<token>", identity.GetString()!);
        }

        if (entry.TryGetProperty("username", out var user) && entry.TryGetProperty("password", out var password) &&
            user.ValueKind == JsonValueKind.String && password.ValueKind == JsonValueKind.String)
        {
            return new RegistryCredential(user.GetString()!, password.GetString()!);
        }

        return null;
    }

    /// <summary>Runs <c>docker-credential-NAME get</c>, server URL on stdin; a "not found" answer means no credential.</summary>
    private RegistryCredential? RunHelper(string name, string serverUrl)
    {
        if (name.Contains('/') || name.Contains(' '))
        {
            throw new InvalidDataException($"credential helper name '{name}' is not a plain name");
        }

        var program = "docker-credential-" + name;
        var startInfo = new ProcessStartInfo(_helperDirectory is null ? program : System.IO.Path.Combine(_helperDirectory, program))
        {
            ArgumentList = { "get" },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start docker-credential-{name}");
        process.StandardInput.Write(serverUrl);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(s_helperTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"docker-credential-{name} did not answer within {s_helperTimeout.TotalSeconds} s");
        }

        var output = stdout.GetAwaiter().GetResult();
        _ = stderr.GetAwaiter().GetResult();
        if (process.ExitCode != 0)
        {
            // Helpers print "credentials not found in native keychain" and exit 1 when they know nothing.
            // Their output is not echoed: a helper could print a secret.
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(output);
            var root = document.RootElement;
            var user = root.GetProperty("Username").GetString() ?? "";
            var secret = root.GetProperty("Secret").GetString() ?? "";
            return new RegistryCredential(user, secret);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"docker-credential-{name} answered something that is not {{\"Username\",\"Secret\"}} JSON");
        }
    }
}
