using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Benchmarks.GzipIndex;

/// <summary>
/// The gzip index against its peers, on the same blob in the same run (page cache warm for all):
/// <list type="bullet">
/// <item>inflate: <c>pigz -dc</c>, .NET <c>GZipStream</c>, and our one-pass index build (inflate + index);</item>
/// <item>index build vs <c>pigz -dc | tar -t</c> (target ≤ 1.1×);</item>
/// <item>index size as a share of the blob, and cold random 4 KiB / 64 KiB read p50/p99 at 1, 2 and 4 MiB
/// spans, against the time <c>pigz -dc</c> takes per MiB of output (targets: 4 KiB p50 ≤ 0.6×, p99 ≤ 2×);</item>
/// <item>whole-layer sequential read through the index (spans inflated in parallel) vs <c>pigz -dc</c>
/// (target ≥ 1.6× throughput on 2 cores).</item>
/// </list>
/// Usage: peer gzindex [--data FILE.tar.gz] [--runs N] [--reads N] [--synthetic | --synthetic-only] [--work DIR]
/// </summary>
public sealed class GzipIndexPeerBenchmark : IPeerBenchmark
{
    private static readonly int[] s_spans = [1 << 20, 2 << 20, 4 << 20];

    public string Name => "gzindex";

    public string Description => "gzip index build, random and sequential reads vs pigz -dc, pigz -dc | tar -t and GZipStream";

    public int Run(string[] args)
    {
        var runs = BenchArgs.Int(args, "--runs", 3);
        var reads = BenchArgs.Int(args, "--reads", 300);
        var work = BenchArgs.Text(args, "--work") ?? Path.Combine(FindRoot(), ".cache", "bench", "gzindex");
        Directory.CreateDirectory(work);
        var data = BenchArgs.Text(args, "--data") ?? DefaultLayer(work);
        Console.WriteLine($"{Environment.ProcessorCount} cores; zlib {SystemZlib.Version}; {Tool("pigz", "--version")}; best of {runs} runs; {reads} random reads per cell");
        Console.WriteLine();
        var allMet = args.Contains("--synthetic-only") || MeasureLayer("main layer", data, work, runs, reads, fullReport: true);
        if (args.Contains("--synthetic") || args.Contains("--synthetic-only"))
        {
            foreach (var (name, path) in SyntheticLayers(work, data))
            {
                allMet &= MeasureLayer(name, path, work, runs, reads: 0, fullReport: false);
            }
        }

        Console.WriteLine(allMet ? "all targets MET" : "some targets NOT MET (see above)");
        return 0;
    }

    private static bool MeasureLayer(string name, string gzip, string work, int runs, int reads, bool fullReport)
    {
        var compressed = new FileInfo(gzip).Length;
        File.ReadAllBytes(gzip); // page cache, for every contender alike
        var indexPath = Path.Combine(work, "bench.meta");
        var build = Best(runs, () => BuildIndex(gzip, indexPath, 1 << 20));
        long uncompressed;
        using (var indexFile = FileBlockSource.OpenRead(indexPath))
        {
            uncompressed = GzipSeekIndex.Load(indexFile, SystemZlib.Instance).UncompressedSize;
        }

        var mib = uncompressed / (double)(1 << 20);
        Console.WriteLine($"== {name}: {gzip}");
        Console.WriteLine($"   {compressed / 1e6:0.0} MB compressed, {uncompressed / 1e6:0.0} MB uncompressed; load average {LoadAverage()}");
        var pigz = BestShell(runs, $"pigz -dc '{gzip}' > /dev/null");
        var pigzTar = fullReport ? BestShell(runs, $"pigz -dc '{gzip}' | tar -t > /dev/null") : default;
        var gzipStream = fullReport ? Best(runs, () => GZipStreamInflate(gzip)) : default;
        var sequential = Best(runs, () => SequentialRead(gzip, indexPath, withDigests: null));

        Console.WriteLine();
        Console.WriteLine($"   {"contender",-54} {"wall s",8} {"CPU s",8} {"MB/s out (wall)",16}");
        Row("pigz -dc > /dev/null", pigz, uncompressed);
        if (fullReport)
        {
            Row("pigz -dc | tar -t", pigzTar, uncompressed);
            Row(".NET GZipStream (zlib-ng) to Stream.Null", gzipStream, uncompressed);
        }

        Row("index build, 1 MiB span (one pass: inflate + index)", build, uncompressed);
        Row("sequential read through the index (parallel spans)", sequential, uncompressed);

        // On a busy machine (other builds and tests) wall time measures the scheduler, not the code:
        // compare CPU time then, and project the 2-core wall time of the parallel read as CPU / cores.
        var busy = LoadAverage() > Environment.ProcessorCount * 0.75;
        Console.WriteLine(busy
            ? $"   the machine is busy (load {LoadAverage():0.0} on {Environment.ProcessorCount} cores): targets judged on CPU time"
            : "   the machine is idle: targets judged on wall time");
        var met = true;
        var buildPeer = fullReport ? pigzTar : pigz;
        var buildRatio = busy ? build.Cpu / buildPeer.Cpu : build.Wall / buildPeer.Wall;
        met &= Report($"index build / {(fullReport ? "(pigz -dc | tar -t)" : "pigz -dc")}", buildRatio, "x time", "<= 1.10", buildRatio <= 1.10);
        var seqRatio = busy ? pigz.Cpu / (sequential.Cpu / Environment.ProcessorCount) : pigz.Wall / sequential.Wall;
        met &= Report($"sequential read throughput / pigz -dc{(busy ? " (CPU/cores)" : string.Empty)}", seqRatio, "x", ">= 1.60", seqRatio >= 1.6);
        if (!fullReport)
        {
            Console.WriteLine();
            return met;
        }

        var pigzPerMiB = (busy ? pigz.Cpu : pigz.Wall) * 1000 / mib;
        Console.WriteLine();
        Console.WriteLine($"   pigz -dc needs {pigz.Wall * 1000 / mib:0.00} ms wall, {pigz.Cpu * 1000 / mib:0.00} ms CPU per MiB of output; read latencies below are {(busy ? "CPU time (getrusage; a cold read runs on one thread)" : "wall time")}");
        Console.WriteLine($"   {"span",6} {"entries",8} {"index bytes",12} {"share",7} | {"4K p50",7} {"4K p99",7} {"64K p50",7} {"64K p99",7} ms, cache off (prefix inflate) | {"4K p50",7} {"4K p99",7} ms, cache on, cold (whole span)");
        foreach (var span in s_spans)
        {
            var path = Path.Combine(work, $"bench-{span >> 20}m.meta");
            BuildIndex(gzip, path, span);
            var size = new FileInfo(path).Length;
            long entries;
            using (var f = FileBlockSource.OpenRead(path))
            {
                entries = GzipSeekIndex.Load(f, SystemZlib.Instance).Entries.Count;
            }

            var small = RandomReads(gzip, path, 4096, reads, cache: false, busy);
            var large = RandomReads(gzip, path, 65536, reads, cache: false, busy);
            var wholeSpan = RandomReads(gzip, path, 4096, reads / 3, cache: true, busy);
            Console.WriteLine($"   {span >> 20,4} M {entries,8} {size,12} {100.0 * size / compressed,6:0.00}% | {small.P50,7:0.00} {small.P99,7:0.00} {large.P50,7:0.00} {large.P99,7:0.00}                                | {wholeSpan.P50,7:0.00} {wholeSpan.P99,7:0.00}");
            if (span == 1 << 20)
            {
                met &= Report("random 4 KiB p50 / pigz ms per MiB (1 MiB span)", small.P50 / pigzPerMiB, "x", "<= 0.60", small.P50 / pigzPerMiB <= 0.6);
                met &= Report("random 4 KiB p99 / pigz ms per MiB (1 MiB span)", small.P99 / pigzPerMiB, "x", "<= 2.00", small.P99 / pigzPerMiB <= 2.0);
            }
        }

        var spansPath = Path.Combine(work, "bench.spans");
        BuildIndex(gzip, indexPath, 1 << 20, spansPath);
        var verified = Best(runs, () => SequentialRead(gzip, indexPath, spansPath));
        Row("sequential read, verifying gzip.spans digests", verified, uncompressed);
        Console.WriteLine();
        return met;
    }

    private static void BuildIndex(string gzip, string indexPath, int span, string? spansPath = null)
    {
        using var input = new FileStream(gzip, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var output = new FileStream(indexPath, FileMode.Create, FileAccess.ReadWrite);
        var result = GzipIndexBuilder.Build(input, output, SystemZlib.Instance, SystemZlib.Instance,
            new GzipIndexOptions { Span = span, SpanDigests = spansPath is not null });
        if (spansPath is not null)
        {
            File.WriteAllBytes(spansPath, result.Spans!.ToBytes());
        }
    }

    private static void SequentialRead(string gzip, string indexPath, string? withDigests)
    {
        using var blob = FileBlockSource.OpenRead(gzip);
        using var indexFile = FileBlockSource.OpenRead(indexPath);
        var digests = withDigests is null ? null : GzipSpanDigests.Read(File.ReadAllBytes(withDigests));
        using var reader = new GzipIndexedSource(blob, GzipSeekIndex.Load(indexFile, SystemZlib.Instance), SystemZlib.Instance, digests,
            new GzipReaderOptions { CacheBytes = 0 });
        var buffer = new byte[16 << 20];
        for (long pos = 0; pos < reader.Size;)
        {
            pos += reader.ReadAt(pos, buffer);
        }
    }

    private static (double P50, double P99) RandomReads(string gzip, string indexPath, int length, int count, bool cache, bool threadCpu)
    {
        using var blob = FileBlockSource.OpenRead(gzip);
        using var indexFile = FileBlockSource.OpenRead(indexPath);
        var index = GzipSeekIndex.Load(indexFile, SystemZlib.Instance);
        var random = new Random(42);
        var buffer = new byte[length];
        var times = new List<double>();
        var options = new GzipReaderOptions { CacheBytes = cache ? 64L << 20 : 0 };
        using (var warm = new GzipIndexedSource(blob, index, SystemZlib.Instance, options: options))
        {
            warm.ReadAt(index.UncompressedSize / 2, buffer);
        }

        for (var i = 0; i < count; i++)
        {
            var offset = random.NextInt64(0, index.UncompressedSize - length);
            using var reader = new GzipIndexedSource(blob, index, SystemZlib.Instance, options: options); // cold: a fresh span cache
            var clock = Stopwatch.StartNew();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            reader.ReadAt(offset, buffer);
            times.Add(threadCpu ? (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds : clock.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        return (Percentile(times, 0.50), Percentile(times, 0.99));
    }

    private static void GZipStreamInflate(string gzip)
    {
        using var input = new FileStream(gzip, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var inflate = new GZipStream(input, CompressionMode.Decompress);
        inflate.CopyTo(Stream.Null, 1 << 20);
    }

    private static IEnumerable<(string Name, string Path)> SyntheticLayers(string work, string source)
    {
        var pigzB32 = Path.Combine(work, "synthetic-pigz-b32.tar.gz");
        if (!File.Exists(pigzB32))
        {
            Shell($"{{ pigz -dc '{source}' 2>/dev/null || true; }} | head -c 250000000 | pigz -n -b 32 > '{pigzB32}.tmp'; mv '{pigzB32}.tmp' '{pigzB32}'");
        }

        var random = Path.Combine(work, "synthetic-incompressible.gz");
        if (!File.Exists(random))
        {
            Shell($"head -c 150000000 /dev/urandom | gzip -1 -n > '{random}.tmp'; mv '{random}.tmp' '{random}'");
        }

        var zeros = Path.Combine(work, "synthetic-zeros.gz");
        if (!File.Exists(zeros))
        {
            Shell($"head -c 1000000000 /dev/zero | pigz -n -6 > '{zeros}.tmp'; mv '{zeros}.tmp' '{zeros}'");
        }

        return [("pigz -b 32 (many small blocks, sync flushes)", pigzB32), ("incompressible (stored blocks)", random), ("1 GB of zeros (huge blocks)", zeros)];
    }

    private static string DefaultLayer(string work)
    {
        var corpus = Path.Combine(FindRoot(), ".cache", "corpus", "usr-tree", "usr-tree.tar.gz");
        if (File.Exists(corpus))
        {
            return corpus;
        }

        var layer = Path.Combine(work, "usr.tar.gz");
        if (!File.Exists(layer))
        {
            Console.WriteLine("building a synthetic ~400 MB layer from /usr/lib and /usr/share (once)...");
            Shell($"{{ tar -cf - /usr/lib /usr/share 2>/dev/null || true; }} | head -c 1200000000 | gzip -6 -n > '{layer}.tmp'; mv '{layer}.tmp' '{layer}'");
        }

        return layer;
    }

    /// <summary>Best wall time and best CPU time (all threads of this process) of N runs after a warm-up.</summary>
    private static Measured Best(int runs, Action action)
    {
        action();
        var best = new Measured(double.MaxValue, double.MaxValue);
        for (var i = 0; i < runs; i++)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            action();
            var wall = clock.Elapsed.TotalSeconds;
            var used = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            best = new Measured(Math.Min(best.Wall, wall), Math.Min(best.Cpu, used));
        }

        return best;
    }

    /// <summary>Best wall and CPU time of a shell pipeline; CPU = user + sys of every process in it (bash's <c>times</c>).</summary>
    private static Measured BestShell(int runs, string command)
    {
        Shell(command);
        var best = new Measured(double.MaxValue, double.MaxValue);
        for (var i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            var output = ShellOutput($"{command}; times");
            var wall = clock.Elapsed.TotalSeconds;
            var children = output.Trim().Split('\n')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Sum(ParseTimes);
            best = new Measured(Math.Min(best.Wall, wall), Math.Min(best.Cpu, children));
        }

        return best;
    }

    /// <summary>"1m4.095s" → 64.095.</summary>
    private static double ParseTimes(string text)
    {
        var m = text.IndexOf('m', StringComparison.Ordinal);
        return (int.Parse(text[..m], CultureInfo.InvariantCulture) * 60) + double.Parse(text[(m + 1)..^1], CultureInfo.InvariantCulture);
    }

    private static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    private static void Row(string name, Measured time, long bytes) =>
        Console.WriteLine($"   {name,-54} {time.Wall,8:0.000} {time.Cpu,8:0.000} {bytes / 1e6 / time.Wall,16:0.0}");

    private readonly record struct Measured(double Wall, double Cpu);

    private static bool Report(string what, double value, string unit, string target, bool met)
    {
        Console.WriteLine($"   {what,-52} {value,6:0.00}{unit}  (target {target})  {(met ? "MET" : "NOT MET")}");
        return met;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static void Shell(string command)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", ["-o", "pipefail", "-c", command])) ?? throw new InvalidOperationException("cannot start bash");
        process.WaitForExit();
        if (process.ExitCode != 0 && !command.Contains("head -c", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"'{command}' failed with {process.ExitCode}");
        }
    }

    private static string ShellOutput(string command)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", ["-o", "pipefail", "-c", command]) { RedirectStandardOutput = true }) ?? throw new InvalidOperationException("cannot start bash");
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{command}' failed with {process.ExitCode}");
        }

        return text;
    }

    private static string Tool(string tool, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var text = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return text.Split('\n')[0].Trim();
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TurboOci.sln")))
            {
                return dir.FullName;
            }
        }

        return Environment.CurrentDirectory;
    }
}
