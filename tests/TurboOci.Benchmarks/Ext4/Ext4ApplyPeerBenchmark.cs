using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using TurboOci.Formats.Ext4;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Storage;

namespace TurboOci.Benchmarks.Ext4;

/// <summary>
/// Applying one OCI layer to an ext4 image: our engine (copied mode: file data written; mapped mode: only
/// metadata, as TurboOCI does) against the kernel's ext4 driver doing the same through GNU tar on a loop
/// mount (tar -x, then umount so every block reaches the image). Same generated layer, same fresh
/// filesystem (mke2fs with the overlaybd base layer's features), same run. e2fsck -fn checks our results.
/// Usage: peer ext4 [--size MiB] [--files N] [--work DIR]
/// </summary>
public sealed class Ext4ApplyPeerBenchmark : IPeerBenchmark
{
    private const string BaseFeatures = "^metadata_csum,uninit_bg,64bit,flex_bg,resize_inode,has_journal,^orphan_file";

    public string Name => "ext4";

    public string Description => "apply a tar layer to ext4: our engine (copied / mapped) vs kernel ext4 + GNU tar on a loop mount";

    public int Run(string[] args)
    {
        var sizeMiB = BenchArgs.Int(args, "--size", 256);
        var files = BenchArgs.Int(args, "--files", 30_000);
        var work = BenchArgs.Text(args, "--work") ?? Path.Combine(Path.GetTempPath(), "turbooci-bench-ext4");
        Directory.CreateDirectory(work);
        var tarPath = Path.Combine(work, "layer.tar");
        var (entries, bytes) = WriteLayer(tarPath, files, (long)sizeMiB << 20);
        Console.WriteLine($"{Environment.ProcessorCount} cores, .NET {Environment.Version}; layer: {entries} entries, {bytes >> 20} MiB of file data, tar {new FileInfo(tarPath).Length >> 20} MiB");

        var image = Path.Combine(work, "fs.img");
        var copied = Measure(image, sizeMiB, () => ApplyOurs(image, tarPath, LayerDataMode.Copied));
        Check(image, "ours, copied");
        var mapped = Measure(image, sizeMiB, () => ApplyOurs(image, tarPath, LayerDataMode.Mapped));
        Check(image, "ours, mapped");
        var kernel = Measure(image, sizeMiB, () => ApplyKernel(image, tarPath, work));

        Console.WriteLine($"{"ours, copied mode",-34} {copied.TotalSeconds,8:F2} s  ({kernel / copied:F2}x the kernel's speed)");
        Console.WriteLine($"{"ours, mapped mode (TurboOCI)",-34} {mapped.TotalSeconds,8:F2} s  ({kernel / mapped:F2}x the kernel's speed)");
        Console.WriteLine($"{"kernel ext4: tar -x + umount",-34} {kernel.TotalSeconds,8:F2} s");
        File.Delete(image);
        File.Delete(tarPath);
        return 0;
    }

    private static TimeSpan Measure(string image, int sizeMiB, Action apply)
    {
        File.Delete(image);
        using (var f = File.Create(image))
        {
            f.SetLength(Math.Max(1L << 30, 4L * sizeMiB << 20));
        }

        Run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-O", BaseFeatures, image);
        var clock = Stopwatch.StartNew();
        apply();
        return clock.Elapsed;
    }

    private static void ApplyOurs(string image, string tarPath, LayerDataMode mode)
    {
        using var device = FileBlockSource.OpenReadWrite(image);
        using var fs = Ext4FileSystem.Open(device, writable: true);
        using var tar = File.OpenRead(tarPath);
        new OciLayerApplier(fs, mode, new DiscardingMapper()).Apply(tar);
    }

    private static void ApplyKernel(string image, string tarPath, string work)
    {
        var mountPoint = Path.Combine(work, "mnt");
        Directory.CreateDirectory(mountPoint);
        Run("mount", "-o", "loop", image, mountPoint);
        try
        {
            Run("tar", "-xf", tarPath, "-C", mountPoint, "--numeric-owner", "--xattrs");
        }
        finally
        {
            Run("umount", mountPoint);
        }
    }

    private static void Check(string image, string what)
    {
        var (code, output) = Run("e2fsck", ["-fn", image], check: false);
        Console.WriteLine(code == 0 ? $"e2fsck -fn after {what}: clean" : $"e2fsck -fn after {what}: exit {code}\n{output}");
    }

    /// <summary>A deterministic layer: one wide directory of empty files plus files of mixed sizes in 100 directories.</summary>
    private static (int Entries, long Bytes) WriteLayer(string path, int files, long dataBytes)
    {
        var random = new Random(42);
        var buffer = new byte[1 << 20];
        random.NextBytes(buffer);
        using var output = File.Create(path);
        using var writer = new TarWriter(output, TarEntryFormat.Pax);
        var entries = 0;
        long written = 0;
        var dataFiles = Math.Max(1, files / 3);
        var meanSize = dataBytes / dataFiles;
        for (var d = 0; d < 100; d++)
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, $"d{d}/") { Mode = (UnixFileMode)0x1ED });
            entries++;
        }

        writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "wide/") { Mode = (UnixFileMode)0x1ED });
        for (var i = 0; i < files; i++)
        {
            var isData = i % 3 == 0;
            var size = isData ? Math.Min(buffer.Length, (long)(random.NextDouble() * 2 * meanSize)) : 0;
            var entry = new PaxTarEntry(TarEntryType.RegularFile, isData ? $"d{i % 100}/file-{i}" : $"wide/empty-{i}")
            {
                Mode = (UnixFileMode)0x1A4,
                ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
                DataStream = new MemoryStream(buffer, 0, (int)size, writable: false),
            };
            writer.WriteEntry(entry);
            entries++;
            written += size;
        }

        return (entries + 1, written);
    }

    private static void Run(string program, params string[] args)
    {
        var (code, output) = Run(program, args, check: true);
        _ = code;
        _ = output;
    }

    private static (int Code, string Output) Run(string program, string[] args, bool check)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        var output = stdout.Result + stderr;
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {process.ExitCode}: {output}");
        }

        return (process.ExitCode, output);
    }

    private sealed class DiscardingMapper : IFileDataMapper
    {
        public void Map(long deviceOffset, long length, long tarOffset)
        {
        }
    }
}
