using System.Text.RegularExpressions;

namespace TurboOci.Registry;

/// <summary>
/// A docker-style image reference: <c>[host[:port]/]repository[:tag][@digest]</c>, with Docker's
/// defaults: no host means Docker Hub, whose single-component names live under <c>library/</c>, and
/// whose API endpoint differs from the name users type.
/// </summary>
public sealed partial record ImageReference
{
    /// <summary>The registry name users type for Docker Hub, and the one a missing host means.</summary>
    public const string DockerHubName = "docker.io";

    /// <summary>The host Docker actually talks to for Docker Hub.</summary>
    public const string DockerHubEndpoint = "registry-1.docker.io";

    /// <summary>The key Docker stores Hub credentials under in config.json.</summary>
    public const string DockerHubCredentialKey = "https://index.docker.io/v1/";

    public const string DefaultTag = "latest";

    /// <summary>The registry as named, e.g. <c>docker.io</c>, <c>127.0.0.1:5000</c>.</summary>
    public required string Registry { get; init; }

    /// <summary>The repository path, e.g. <c>library/ubuntu</c>.</summary>
    public required string Repository { get; init; }

    public string? Tag { get; init; }

    public Digest? Digest { get; init; }

    /// <summary>The host:port to connect to (Docker Hub's name maps to its API endpoint).</summary>
    public string Endpoint => Registry == DockerHubName ? DockerHubEndpoint : Registry;

    /// <summary>The tag or digest a manifest GET asks for: the digest wins when both are given.</summary>
    public string ManifestReference => Digest?.ToString() ?? Tag ?? DefaultTag;

    public ImageReference WithDigest(Digest digest) => this with { Digest = digest };

    public ImageReference WithTag(string tag) => this with { Tag = tag, Digest = null };

    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    public static ImageReference Parse(string text) =>
        TryParse(text, out var reference, out var error) ? reference : throw new FormatException($"invalid image reference '{text}': {error}");

    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ImageReference? reference, out string error)
    {
        reference = null;
        error = "";
        if (string.IsNullOrWhiteSpace(text) || text.Length > 4096)
        {
            error = "empty or too long";
            return false;
        }

        var rest = text;
        Digest? digest = null;
        var at = rest.IndexOf('@');
        if (at >= 0)
        {
            if (!TurboOci.Registry.Digest.TryParse(rest[(at + 1)..], out var parsed))
            {
                error = "bad digest";
                return false;
            }

            digest = parsed;
            rest = rest[..at];
        }

        // The tag is after the last ':' that follows the last '/', so a host port is not a tag.
        string? tag = null;
        var lastSlash = rest.LastIndexOf('/');
        var lastColon = rest.LastIndexOf(':');
        if (lastColon > lastSlash)
        {
            tag = rest[(lastColon + 1)..];
            rest = rest[..lastColon];
            if (!TagPattern().IsMatch(tag))
            {
                error = "bad tag";
                return false;
            }
        }

        // Like Docker: the first component is a host only if it has a '.' or ':' or is "localhost".
        string registry;
        string repository;
        var firstSlash = rest.IndexOf('/');
        var first = firstSlash < 0 ? "" : rest[..firstSlash];
        if (firstSlash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost"))
        {
            registry = first;
            repository = rest[(firstSlash + 1)..];
        }
        else
        {
            registry = DockerHubName;
            repository = rest;
        }

        if (registry is "index.docker.io" or DockerHubEndpoint)
        {
            registry = DockerHubName;
        }

        if (registry == DockerHubName && !repository.Contains('/'))
        {
            repository = "library/" + repository;
        }

        if (!RepositoryPattern().IsMatch(repository) || repository.Length > 255)
        {
            error = "bad repository name (lower-case letters, digits, separators . _ __ - and /)";
            return false;
        }

        reference = new ImageReference
        {
            Registry = registry,
            Repository = repository,
            Tag = tag ?? (digest is null ? DefaultTag : null),
            Digest = digest,
        };
        return true;
    }

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();
}
