using System.Diagnostics;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>Synthetic layers made by real gzip/pigz, and helpers to index and read them.</summary>
internal static class GzipTestData
{
    private static readonly string s_dir = Directory.CreateTempSubdirectory("gzindex-tests-").FullName;

    /// <summary>A mix a real layer has: text, binary patterns, incompressible bytes and zero runs.</summary>
    public static byte[] MixedContent(int seed, int size)
    {
        var random = new Random(seed);
        var data = new byte[size];
        var pos = 0;
        while (pos < size)
        {
            var kind = random.Next(4);
            var length = Math.Min(size - pos, random.Next(1000, 400_000));
            var chunk = data.AsSpan(pos, length);
            switch (kind)
            {
                case 0:
                    for (var i = 0; i < length; i++)
                    {
                        chunk[i] = (byte)"the quick brown fox jumps over the lazy dog 0123456789\n"[(i + random.Next(3)) % 55];
                    }

                    break;
                case 1:
                    random.NextBytes(chunk);
                    break;
                case 2:
                    chunk.Clear();
                    break;
                default:
                    for (var i = 0; i < length; i++)
                    {
                        chunk[i] = (byte)((i * 7) % 251);
                    }

                    break;
            }

            pos += length;
        }

        return data;
    }

    /// <summary>Compresses with an external tool reading stdin (e.g. "gzip -9 -n", "pigz -n -b 32").</summary>
    public static byte[] Compress(byte[] data, string tool, string arguments)
    {
        var input = Path.Combine(s_dir, $"in-{Guid.NewGuid():N}");
        File.WriteAllBytes(input, data);
        try
        {
            return RunToBytes(tool, $"{arguments} -c {input}");
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>What <c>gzip -dc</c> makes of a blob: the reference output.</summary>
    public static byte[] GunzipReference(byte[] gzip)
    {
        var path = Path.Combine(s_dir, $"gz-{Guid.NewGuid():N}.gz");
        File.WriteAllBytes(path, gzip);
        try
        {
            return RunToBytes("gzip", $"-dc {path}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static byte[] RunToBytes(string tool, string arguments)
    {
        var start = new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {tool}");
        using var output = new MemoryStream();
        var errors = process.StandardError.ReadToEndAsync();
        process.StandardOutput.BaseStream.CopyTo(output);
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {arguments} failed ({process.ExitCode}): {errors.Result}");
        }

        return output.ToArray();
    }

    public static (byte[] Index, GzipIndexBuildResult Result) BuildIndex(byte[] gzip, GzipIndexOptions? options = null)
    {
        using var output = new MemoryStream();
        var result = GzipIndexBuilder.Build(new MemoryStream(gzip), output, SystemZlib.Instance, SystemZlib.Instance, options);
        return (output.ToArray(), result);
    }

    public static GzipIndexedSource OpenReader(byte[] gzip, byte[] index, GzipSpanDigests? digests = null, GzipReaderOptions? options = null) =>
        new(new MemoryBlockSource(gzip), GzipSeekIndex.Load(new MemoryBlockSource(index), SystemZlib.Instance), SystemZlib.Instance, digests, options);
}
