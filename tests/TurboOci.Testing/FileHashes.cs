using System.Security.Cryptography;

namespace TurboOci.Testing;

/// <summary>Hashes of whole files and block devices, read the way a reader of a served device reads them.</summary>
public static class FileHashes
{
    /// <summary>
    /// The lower-case hex sha256 of the file or device at <paramref name="path"/>, read in 1 MiB reads with no
    /// stream buffer: through a direct-I/O FUSE file or a served block device each read is one request.
    /// </summary>
    public static string Sha256OfFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (int read; (read = stream.Read(buffer)) > 0;)
        {
            hash.AppendData(buffer, 0, read);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
