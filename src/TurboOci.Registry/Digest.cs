using System.Security.Cryptography;
using TurboOci.Storage;

namespace TurboOci.Registry;

/// <summary>
/// A content digest, <c>sha256:&lt;64 lower-case hex&gt;</c> (or sha512). Only algorithms we can verify
/// are accepted, so every digest we hold can be checked against the bytes it names.
/// </summary>
public readonly record struct Digest
{
    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    public string Algorithm { get; }

    public string Hex { get; }

    public override string ToString() => $"{Algorithm}:{Hex}";

    public static Digest Parse(string text) =>
        TryParse(text, out var digest) ? digest : throw new FormatException($"not a sha256/sha512 digest: '{Truncate(text)}'");

    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null)
        {
            return false;
        }

        var colon = text.IndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        var algorithm = text[..colon];
        var hex = text[(colon + 1)..];
        var expected = algorithm switch
        {
            "sha256" => 64,
            "sha512" => 128,
            _ => -1,
        };
        if (hex.Length != expected || !hex.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            return false;
        }

        digest = new Digest(algorithm, hex);
        return true;
    }

    /// <summary>The sha256 digest of some bytes.</summary>
    public static Digest Sha256(ReadOnlySpan<byte> content) =>
        new("sha256", Convert.ToHexStringLower(SHA256.HashData(content)));

    /// <summary>The sha256 digest of a stream, read to its end.</summary>
    public static async Task<Digest> Sha256Async(Stream content, CancellationToken cancellationToken = default) =>
        new("sha256", Convert.ToHexStringLower(await SHA256.HashDataAsync(content, cancellationToken).ConfigureAwait(false)));

    /// <summary>A hash of the same algorithm, for streaming verification.</summary>
    public IncrementalHash CreateHash() =>
        IncrementalHash.CreateHash(Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);

    /// <summary>Whether these bytes have this digest.</summary>
    public bool Matches(ReadOnlySpan<byte> content)
    {
        using var hash = CreateHash();
        hash.AppendData(content);
        return Convert.ToHexStringLower(hash.GetCurrentHash()) == Hex;
    }

    /// <summary>Throws <see cref="TurboOciFormatException"/> unless the bytes have this digest.</summary>
    public void Verify(ReadOnlySpan<byte> content, string what)
    {
        if (!Matches(content))
        {
            throw new TurboOciFormatException("OCI", what, 0, $"content does not match digest {this} ({content.Length} bytes received)");
        }
    }

    private static string Truncate(string text) => text.Length > 80 ? text[..80] + "..." : text;
}
