using System.Security.Cryptography;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.ZFile.Tests;

/// <summary>The overlaybd reference files and the values their README documents (not computed by our code).</summary>
internal static class Fixtures
{
    public const string InputSha256 = "07a92649cc034380a43f8ce0fdaa12228ef8d02033e1dec5be41f2d890077c84";
    public const long InputLength = 1_049_810;

    /// <summary>sha256 of the LZ4-decoded payload of the stock base layer ext4_64 (formats doc, Appendix A).</summary>
    public const string BaseLayerPayloadSha256 = "799dbd74cbcfbd7f37611057130b20fda0e1e671280df97cc3a05d73620d5ac7";
    public const long BaseLayerPayloadLength = 541_937_664;

    public static string ZFile(string name) => RepoPaths.Fixture("overlaybd-reference", "zfile", name);

    public static string Lsmt(string name) => RepoPaths.Fixture("overlaybd-reference", "lsmt", name);

    public static string Reference(params string[] parts) => RepoPaths.Fixture(["overlaybd-reference", .. parts]);

    public static byte[] Input => s_input.Value;

    private static readonly Lazy<byte[]> s_input = new(() => File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "inputs", "zfile-input.bin")));

    /// <summary>The ZFile <c>ext4_64</c> inside base/ext4_64.tar.gz (4.7 MB).</summary>
    public static byte[] BaseLayer => ReferenceFixtures.BaseLayerBytes;

    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>Reads a whole source through odd-sized reads and hashes it, without holding it in memory.</summary>
    public static string Sha256Of(BlockSource source, int chunk = 1 << 20) => ReferenceFixtures.Sha256Of(source, chunk);

    public static byte[] ReadAll(BlockSource source)
    {
        var data = new byte[source.Size];
        source.ReadExactlyAt(0, data);
        return data;
    }

    public static byte[] Compress(ReadOnlySpan<byte> data, ZFileWriterOptions options)
    {
        using var output = new MemoryStream();
        ZFileWriter.Write(new MemoryBlockSource(data.ToArray()), output, options);
        return output.ToArray();
    }

    /// <summary>Compressible but varied test data: text-like runs, a repeated pattern, zeros and a few random bytes.</summary>
    public static byte[] MixedData(int length, int seed)
    {
        var random = new Random(seed);
        var data = new byte[length];
        for (var i = 0; i < length;)
        {
            var run = Math.Min(length - i, random.Next(1, 3000));
            switch (random.Next(4))
            {
                case 0:
                    data.AsSpan(i, run).Clear();
                    break;
                case 1:
                    for (var k = 0; k < run; k++)
                    {
                        data[i + k] = (byte)('a' + ((i + k) % 23));
                    }

                    break;
                case 2:
                    random.NextBytes(data.AsSpan(i, Math.Min(run, 64)));
                    break;
                default:
                    data.AsSpan(i, run).Fill((byte)random.Next(256));
                    break;
            }

            i += run;
        }

        return data;
    }
}
