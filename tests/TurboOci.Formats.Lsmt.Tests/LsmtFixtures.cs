using System.Security.Cryptography;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>The overlaybd reference files and the hashes their README documents.</summary>
internal static class LsmtFixtures
{
    public const string Layer1Sha256 = "b63c4cc6a2fbd4ea572bd2b04075cedcbd63ffe09079b95bb69becefedc4b4d3";
    public const string Layer2Sha256 = "e9f6513f34348ff4a595a7571d3147776a188dbd9dac7903bbc6f99caab9a617";
    public const string Layers12Sha256 = "c9a46ec72f3f8db3f9d627bdce7c8add39be02471942a26232088423b5d69446";
    public const long VirtualSize = 1L << 30;

    public static string Path(string name) => RepoPaths.Fixture("overlaybd-reference", "lsmt", name);

    public static byte[] Bytes(string name) => File.ReadAllBytes(Path(name));

    /// <summary>SHA-256 (lower-case hex) of a whole block source, read in 4 MiB pieces.</summary>
    public static string Sha256(BlockSource source) => ReferenceFixtures.Sha256Of(source);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Copies fixture files into a fresh temp folder (RW layers are opened read-write).</summary>
    public static string CopyToTemp(TempDir folder, string name)
    {
        var destination = folder.File(name);
        File.Copy(Path(name), destination);
        return destination;
    }
}
