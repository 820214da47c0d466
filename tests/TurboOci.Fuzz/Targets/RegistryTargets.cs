using System.Buffers.Binary;
using System.Text;
using TurboOci.Registry;
using TurboOci.Registry.Cache;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>A manifest or index as a registry might send it: media type sniffing, parsing, every descriptor's digest.</summary>
public sealed class OciManifestTarget : IFuzzTarget
{
    public string Name => "oci-manifest";

    public void Run(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        var mediaType = ManifestContent.DeclaredMediaType(bytes) ?? MediaTypes.OciManifest;
        var content = new ManifestContent(mediaType, bytes, Digest.Sha256(bytes));
        var descriptors = content.IsIndex
            ? content.AsIndex().Manifests
            : content.AsManifest() is var manifest ? manifest.Layers.Prepend(manifest.Config).Concat(manifest.Subject is null ? [] : [manifest.Subject]) : [];
        foreach (var descriptor in descriptors)
        {
            if (descriptor is null)
            {
                continue;
            }

            _ = descriptor.ParsedDigest;
            _ = descriptor.Platform?.ToString();
        }
    }

    public bool IsExpected(Exception exception) => exception is TurboOciFormatException or InvalidDataException;
}

/// <summary>overlaybd.json: every key with a wrong type must be refused by name.</summary>
public sealed class OverlaybdConfigTarget : IFuzzTarget
{
    public string Name => "overlaybd-config";

    public void Run(ReadOnlySpan<byte> input) => _ = OverlaybdConfig.Parse(input);
}

/// <summary>
/// A range cache entry file as a crash or a bad disk might leave it. Input: 8 bytes offset, 4 bytes length
/// (the range the file name promises), then the file. Validation must only ever say yes or no.
/// </summary>
public sealed class RangeCacheEntryTarget : IFuzzTarget
{
    public string Name => "range-cache-entry";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 12)
        {
            return;
        }

        var offset = BinaryPrimitives.ReadInt64LittleEndian(input);
        var length = BinaryPrimitives.ReadInt32LittleEndian(input[8..]);
        if (DiskRangeCache.Validate(input[12..], offset, length, out _) && input.Length - 12 != RangeCacheEntryHeader.Size + length)
        {
            throw new InvalidOperationException("a valid entry must hold exactly header + length bytes");
        }
    }
}

/// <summary>Image references as users type them: parse or refuse, never throw anything else.</summary>
public sealed class ImageReferenceTarget : IFuzzTarget
{
    public string Name => "image-reference";

    public void Run(ReadOnlySpan<byte> input)
    {
        var text = Encoding.UTF8.GetString(input);
        if (ImageReference.TryParse(text, out var reference, out _))
        {
            // Whatever parses must print as something that parses to the same thing.
            var again = ImageReference.Parse(reference.ToString());
            if (again != reference)
            {
                throw new InvalidOperationException($"'{text}' -> '{reference}' -> '{again}'");
            }
        }
    }
}

/// <summary>overlaybd's repoBlobUrl as a config carries it: split into registry and repository, or refused.</summary>
public sealed class RepoBlobUrlTarget : IFuzzTarget
{
    public string Name => "repo-blob-url";

    public void Run(ReadOnlySpan<byte> input)
    {
        var (image, _) = RegistryBlobStore.ParseRepoBlobUrl(Encoding.UTF8.GetString(input));
        if (image.Registry.Length == 0 || image.Repository.Length == 0)
        {
            throw new InvalidOperationException("an accepted repoBlobUrl must name a registry and a repository");
        }
    }

    public bool IsExpected(Exception exception) => exception is FormatException or ArgumentException;
}

/// <summary>
/// A Docker-style credential document (config.json, overlaybd's credential file, a credential server's
/// <c>data</c>): read only its auths, look a registry up; a bad entry is refused as invalid data.
/// </summary>
public sealed class CredentialDocumentTarget : IFuzzTarget
{
    public string Name => "credential-document";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var document = System.Text.Json.JsonDocument.Parse(input.ToArray(), new System.Text.Json.JsonDocumentOptions { MaxDepth = 32 });
        var provider = new DockerConfigCredentialProvider(document.RootElement, "fuzz");
        _ = provider.Find("127.0.0.1:5000");
        _ = provider.Find("docker.io");
    }

    public bool IsExpected(Exception exception) => exception is System.Text.Json.JsonException or InvalidDataException;
}
