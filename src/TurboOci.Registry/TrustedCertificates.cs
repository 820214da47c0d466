using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace TurboOci.Registry;

/// <summary>
/// Certificate authorities from a PEM file that a TLS server certificate may chain to: a private registry's
/// CA, or the CA overlaybd's https credential server is given. The host name must still match; revocation
/// is not checked (private CAs rarely publish it).
/// </summary>
public sealed class TrustedCertificates
{
    private const int MaxPemBytes = 4 * 1024 * 1024;
    private readonly X509Certificate2Collection _authorities;
    private readonly bool _alsoSystemRoots;

    private TrustedCertificates(X509Certificate2Collection authorities, bool alsoSystemRoots)
    {
        _authorities = authorities;
        _alsoSystemRoots = alsoSystemRoots;
    }

    public string Source { get; private init; } = "";

    /// <param name="alsoSystemRoots">True: these authorities are trusted besides the system's; false: instead of them.</param>
    public static TrustedCertificates FromPemFile(string path, bool alsoSystemRoots = false)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"CA certificate file {path} does not exist", path);
        }

        if (info.Length > MaxPemBytes)
        {
            throw new InvalidDataException($"CA certificate file {path} is larger than {MaxPemBytes} bytes");
        }

        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(path);
        if (authorities.Count == 0)
        {
            throw new InvalidDataException($"CA certificate file {path} holds no PEM certificate");
        }

        return new TrustedCertificates(authorities, alsoSystemRoots) { Source = path };
    }

    /// <summary>A <see cref="RemoteCertificateValidationCallback"/>.</summary>
    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        if (errors == SslPolicyErrors.None && _alsoSystemRoots)
        {
            return true;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_authorities);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            // Intermediates the server sent.
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return custom.Build(leaf);
    }
}
