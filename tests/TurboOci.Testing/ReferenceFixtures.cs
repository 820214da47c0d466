using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using TurboOci.Storage;

namespace TurboOci.Testing;

/// <summary>Ways into overlaybd's reference files that several test projects need.</summary>
public static class ReferenceFixtures
{
    /// <summary>overlaybd's stock base layer tarball (base/ext4_64.tar.gz).</summary>
    public static string BaseLayerTarball => RepoPaths.Fixture("overlaybd-reference", "base", "ext4_64.tar.gz");

    /// <summary>The ZFile <c>ext4_64</c> (4.7 MB) inside the base layer tarball, written to <paramref name="destination"/>.</summary>
    public static string ExtractBaseLayer(string destination) => ExtractMember(BaseLayerTarball, "ext4_64", destination);

    /// <summary>The base layer's bytes, read once per test process.</summary>
    public static byte[] BaseLayerBytes => s_baseLayerBytes.Value;

    private static readonly Lazy<byte[]> s_baseLayerBytes = new(() =>
    {
        using var temp = new TempDir();
        return File.ReadAllBytes(ExtractBaseLayer(temp.File("ext4_64")));
    });

    /// <summary>Writes the member named <paramref name="member"/> (a leading ./ ignored) of a .tar.gz to <paramref name="destination"/>.</summary>
    public static string ExtractMember(string tarGz, string member, string destination)
    {
        using var gzip = new GZipStream(File.OpenRead(tarGz), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.Name.TrimStart('.', '/') == member)
            {
                entry.ExtractToFile(destination, overwrite: true);
                return destination;
            }
        }

        throw new InvalidDataException($"{tarGz} has no member {member}");
    }

    /// <summary>Decompresses a whole .gz file to <paramref name="destination"/>.</summary>
    public static string Gunzip(string gzipPath, string destination)
    {
        using var gzip = new GZipStream(File.OpenRead(gzipPath), CompressionMode.Decompress);
        using var output = File.Create(destination);
        gzip.CopyTo(output);
        return destination;
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of a whole block source, read in <paramref name="chunk"/>-byte pieces (odd sizes
    /// exercise reads that straddle blocks), without holding the source in memory. A short read before the end fails.
    /// </summary>
    public static string Sha256Of(BlockSource source, int chunk = 4 << 20)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[chunk];
        for (long position = 0; position < source.Size;)
        {
            var length = (int)Math.Min(buffer.Length, source.Size - position);
            source.ReadExactlyAt(position, buffer.AsSpan(0, length));
            hash.AppendData(buffer, 0, length);
            position += length;
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
