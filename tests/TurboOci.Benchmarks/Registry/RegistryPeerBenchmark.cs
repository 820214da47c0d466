using System.Diagnostics;
using System.Globalization;
using TurboOci.Registry;

namespace TurboOci.Benchmarks.Registry;

/// <summary>
/// Range fetches and whole-blob reads through our client and remote block source against curl on the same
/// registry in the same run, plus requests per miss counted from the registry's own access log.
/// Run by tools/bench/registry, which starts docker-registry on loopback and passes its host and log.
/// </summary>
public sealed class RegistryPeerBenchmark : IPeerBenchmark
{
    private const string Repository = "bench/blob";

    private static RemoteBlobOptions _sequentialOptions = new();

    public string Name => "registry";

    public string Description => "range GET throughput/latency (64K/1M/4M x 1/8 threads), requests per miss, sequential blob read; vs curl";

    public int Run(string[] args)
    {
        var options = Args.Parse(args);
        var host = options.Get("registry") ?? throw new ArgumentException("--registry HOST:PORT is required");
        var accessLog = options.Get("access-log") ?? throw new ArgumentException("--access-log FILE is required");
        var blobMiB = int.Parse(options.Get("blob-mb") ?? "500", CultureInfo.InvariantCulture);
        var rounds = int.Parse(options.Get("rounds") ?? "3", CultureInfo.InvariantCulture);
        var parts = (options.Get("parts") ?? "ranges,miss,sequential").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        // Read-ahead shape of the sequential part (defaults: the library's own).
        var defaults = new RemoteBlobOptions();
        _sequentialOptions = defaults with
        {
            MaxReadAheadUnits = int.Parse(options.Get("read-ahead-max") ?? defaults.MaxReadAheadUnits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            MaxUnitsPerRequest = int.Parse(options.Get("units-per-request") ?? defaults.MaxUnitsPerRequest.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
        };
        RunAsync(host, accessLog, blobMiB, rounds, parts).GetAwaiter().GetResult();
        return 0;
    }

    private static async Task RunAsync(string host, string accessLog, int blobMiB, int rounds, IReadOnlySet<string> parts)
    {
        using var client = new RegistryClient();
        var image = ImageReference.Parse($"{host}/{Repository}");
        Console.WriteLine($"generating and pushing a {blobMiB} MiB blob...");
        var blob = new byte[blobMiB * 1024L * 1024];
        new Random(42).NextBytes(blob);
        var digest = Digest.Sha256(blob);
        await client.PushBlobAsync(image, digest, blob.Length, () => new MemoryStream(blob, writable: false), chunkSize: 64 << 20);
        var url = $"http://{host}/v2/{Repository}/blobs/{digest}";
        var curl = new CurlPeer(url);
        if (parts.Contains("ranges"))
        {
            await RangesAsync(client, image, digest, blob, curl, rounds);
        }

        if (parts.Contains("miss"))
        {
            Console.WriteLine();
            await RequestsPerMissAsync(client, image, digest, blob, accessLog, digest.ToString());
        }

        if (parts.Contains("sequential"))
        {
            await SequentialAsync(client, image, digest, blob, curl, rounds);
        }
    }

    private static async Task RangesAsync(RegistryClient client, ImageReference image, Digest digest, byte[] blob, CurlPeer curl, int rounds)
    {
        Console.WriteLine();
        Console.WriteLine($"range fetches, best of {rounds} rounds (MB/s = 10^6 bytes/s; p50/p99 latency in ms)");
        Console.WriteLine("rounds interleave ours and curl; spread = slowest-fastest round, MB/s");
        Console.WriteLine($"{"range",-6} {"thr",3} {"ours MB/s",10} {"curl MB/s",10} {"ratio",6}   {"ours p50/p99",14} {"curl p50/p99",14}   {"ours spread",13} {"curl spread",13}");
        foreach (var size in new[] { 64 * 1024, 1024 * 1024, 4 * 1024 * 1024 })
        {
            foreach (var threads in new[] { 1, 8 })
            {
                var total = Math.Clamp((int)(256L * 1024 * 1024 / size), 64, 2048);
                var random = new Random(size + threads);
                var offsets = Enumerable.Range(0, total).Select(_ => random.NextInt64(0, blob.Length / size) * size).ToArray();
                // One unmeasured round of ours: the first requests pay for JIT and connection setup.
                await OursAsync(client, image, digest, offsets[..Math.Min(16, offsets.Length)], size, threads, blob);
                var oursRounds = new List<Measurement>();
                var curlRounds = new List<Measurement>();
                for (var round = 0; round < rounds; round++)
                {
                    oursRounds.Add(await OursAsync(client, image, digest, offsets, size, threads, blob));
                    curlRounds.Add(curl.Ranges(offsets, size, threads));
                }

                var bestOurs = oursRounds.MaxBy(m => m.MBps)!;
                var bestCurl = curlRounds.MaxBy(m => m.MBps)!;
                var row = $"{Human(size),-6} {threads,3} {bestOurs.MBps,10:0.0} {bestCurl.MBps,10:0.0} {bestOurs.MBps / bestCurl.MBps,6:0.00}   " +
                          $"{bestOurs.P50,6:0.00}/{bestOurs.P99,-7:0.00} {bestCurl.P50,6:0.00}/{bestCurl.P99,-7:0.00}   " +
                          $"{Spread(oursRounds),13} {Spread(curlRounds),13}";
                Console.WriteLine(row);
            }
        }
    }

    private static async Task SequentialAsync(RegistryClient client, ImageReference image, Digest digest, byte[] blob, CurlPeer curl, int rounds)
    {
        Console.WriteLine();
        Console.WriteLine($"whole blob, sequential 1 MiB reads through the remote block source ({_sequentialOptions.FetchUnit >> 20} MiB units, read-ahead " +
                          $"{_sequentialOptions.ReadAheadUnits} growing to {_sequentialOptions.MaxReadAheadUnits}, up to {_sequentialOptions.MaxUnitsPerRequest} units per request) vs curl of the blob");
        double bestSource = 0, bestCurlWhole = 0, bestDownload = 0;
        double leastSourceCpu = double.MaxValue, leastCurlCpu = double.MaxValue;
        // One unmeasured round first: tiered JIT recompiles the hot path early on, which a node's long-running reader never pays again.
        await ReadSequentiallyAsync(client, image, digest, blob, report: false);
        for (var round = 0; round < rounds; round++)
        {
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var sourceMBps = await ReadSequentiallyAsync(client, image, digest, blob);
            bestSource = Math.Max(bestSource, sourceMBps);
            leastSourceCpu = Math.Min(leastSourceCpu, (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds);
            var (curlMBps, curlCpu) = curl.Whole(blob.Length);
            Console.WriteLine($"    curl this round: {curlMBps:0.0} MB/s (ratio {sourceMBps / curlMBps:0.00})");
            bestCurlWhole = Math.Max(bestCurlWhole, curlMBps);
            leastCurlCpu = Math.Min(leastCurlCpu, curlCpu);
            var clock = Stopwatch.StartNew();
            await client.DownloadBlobAsync(image, digest, Stream.Null);
            bestDownload = Math.Max(bestDownload, blob.Length / clock.Elapsed.TotalSeconds / 1e6);
        }

        Console.WriteLine($"  ours {bestSource:0.0} MB/s, curl {bestCurlWhole:0.0} MB/s, ratio {bestSource / bestCurlWhole:0.00}");
        // CPU per GB does not depend on what else the machine runs, unlike wall-clock throughput on a busy host.
        var gigabytes = blob.Length / 1e9;
        Console.WriteLine($"  client CPU (user+sys) per GB: ours {leastSourceCpu / gigabytes:0.00} s, curl {leastCurlCpu / gigabytes:0.00} s");
        Console.WriteLine($"  (our client's single digest-checked GET of the whole blob: {bestDownload:0.0} MB/s, ratio {bestDownload / bestCurlWhole:0.00})");
    }

    private static async Task<Measurement> OursAsync(RegistryClient client, ImageReference image, Digest digest, long[] offsets, int size, int threads, byte[] blob)
    {
        var latencies = new double[offsets.Length];
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, threads).Select(_ => Task.Run(async () =>
        {
            var buffer = new byte[size];
            int i;
            while ((i = Interlocked.Increment(ref next)) < offsets.Length)
            {
                var start = Stopwatch.GetTimestamp();
                await client.ReadBlobRangeAsync(image, digest, offsets[i], buffer);
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (buffer[size / 2] != blob[offsets[i] + size / 2])
                {
                    throw new InvalidDataException("wrong bytes");
                }
            }
        })));
        return Measurement.From((long)offsets.Length * size, clock.Elapsed, latencies);
    }

    private static async Task RequestsPerMissAsync(RegistryClient client, ImageReference image, Digest digest, byte[] blob, string accessLog, string digestText)
    {
        const int unit = 1024 * 1024;
        var units = (int)(blob.Length / unit);
        var random = new Random(7);
        var chosen = Enumerable.Range(0, units).OrderBy(_ => random.Next()).Take(Math.Min(200, units)).ToList();
        await using var source = await RemoteBlobSource.OpenAsync(client, image, digest, blob.Length, new RemoteBlobOptions { FetchUnit = unit, ReadAheadUnits = 0 });
        var before = BlobGets(accessLog, digestText);
        var buffer = new byte[4096];
        // 8 threads, each unit read by two threads at once: coalescing must keep it at one request per unit.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(thread => Task.Run(async () =>
        {
            for (var i = thread / 2; i < chosen.Count; i += 4)
            {
                await source.ReadAtAsync(chosen[i] * (long)unit + 100, buffer);
            }
        })));
        await Task.Delay(500); // the registry logs after responding
        var requests = BlobGets(accessLog, digestText) - before;
        Console.WriteLine($"requests per miss (registry access log): {chosen.Count} missed units from 8 threads -> {requests} GETs = {requests / (double)chosen.Count:0.000} per miss");
    }

    private static int BlobGets(string accessLog, string digest)
    {
        using var stream = new FileStream(accessLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var count = 0;
        while (reader.ReadLine() is { } line)
        {
            count += line.Contains($"\"GET /v2/{Repository}/blobs/{digest}", StringComparison.Ordinal) ? 1 : 0;
        }

        return count;
    }

    private static async Task<double> ReadSequentiallyAsync(RegistryClient client, ImageReference image, Digest digest, byte[] blob, bool report = true)
    {
        await using var source = await RemoteBlobSource.OpenAsync(client, image, digest, blob.Length, _sequentialOptions);
        var buffer = new byte[1024 * 1024];
        var clock = Stopwatch.StartNew();
        for (long offset = 0; offset < blob.Length; offset += buffer.Length)
        {
            var read = await source.ReadAtAsync(offset, buffer);
            if (buffer[read - 1] != blob[offset + read - 1])
            {
                throw new InvalidDataException("wrong bytes");
            }
        }

        var throughput = blob.Length / clock.Elapsed.TotalSeconds / 1e6;
        await source.DrainAsync(); // the last request is counted once its call has returned, after the bytes reached the reader
        if (report)
        {
            Console.WriteLine($"  round: {throughput:0.0} MB/s in {source.FetchRequests} requests, {source.FetchedBytes / (double)blob.Length:0.000}x the blob fetched");
        }

        return throughput;
    }

    private static string Spread(List<Measurement> rounds) => $"{rounds.Min(m => m.MBps):0}-{rounds.Max(m => m.MBps):0}";

    private static string Human(int size) => size >= 1 << 20 ? $"{size >> 20}M" : $"{size >> 10}K";

    private sealed record Measurement(double MBps, double P50, double P99)
    {
        public static Measurement From(long bytes, TimeSpan wall, double[] latencies)
        {
            Array.Sort(latencies);
            return new Measurement(bytes / wall.TotalSeconds / 1e6, latencies[latencies.Length / 2], latencies[(int)(latencies.Length * 0.99)]);
        }
    }

    /// <summary>curl with keep-alive: one process per thread, every range of that thread in one config file.</summary>
    private sealed class CurlPeer(string url)
    {
        public Measurement Ranges(long[] offsets, int size, int threads)
        {
            var work = Directory.CreateTempSubdirectory("turbooci-bench-curl-");
            try
            {
                var configs = Enumerable.Range(0, threads).Select(t =>
                {
                    var path = Path.Combine(work.FullName, $"w{t}.cfg");
                    var lines = new List<string>();
                    for (var i = t; i < offsets.Length; i += threads)
                    {
                        if (lines.Count > 0)
                        {
                            lines.Add("next");
                        }

                        lines.Add($"url = \"{url}\"");
                        lines.Add($"range = \"{offsets[i]}-{offsets[i] + size - 1}\"");
                        lines.Add("output = \"/dev/null\"");
                        lines.Add("write-out = \"%{time_total}\\n\"");
                        lines.Add("silent");
                    }

                    File.WriteAllLines(path, lines);
                    return path;
                }).ToList();
                var clock = Stopwatch.StartNew();
                var processes = configs.Select(c => Start("curl", "-K", c)).ToList();
                var outputs = processes.Select(p => p.StandardOutput.ReadToEndAsync()).ToList();
                foreach (var process in processes)
                {
                    process.WaitForExit();
                    if (process.ExitCode != 0)
                    {
                        throw new InvalidOperationException($"curl exited {process.ExitCode}: {process.StandardError.ReadToEnd()}");
                    }
                }

                var wall = clock.Elapsed;
                var latencies = outputs.SelectMany(o => o.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    .Select(s => double.Parse(s, CultureInfo.InvariantCulture) * 1000).ToArray();
                return Measurement.From((long)offsets.Length * size, wall, latencies);
            }
            finally
            {
                work.Delete(recursive: true);
            }
        }

        /// <summary>Throughput of one plain GET of the blob, and the CPU seconds curl spent on it (from /usr/bin/time).</summary>
        public (double MBps, double CpuSeconds) Whole(long size)
        {
            var clock = Stopwatch.StartNew();
            using var process = Start("/usr/bin/time", "-f", "cpu %U %S", "curl", "-s", "-o", "/dev/null", url);
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            var wall = clock.Elapsed;
            var cpu = stderr.Split('\n').Single(l => l.StartsWith("cpu ", StringComparison.Ordinal)).Split(' ')[1..]
                .Sum(s => double.Parse(s, CultureInfo.InvariantCulture));
            return (size / wall.TotalSeconds / 1e6, cpu);
        }

        private static Process Start(string program, params string[] args)
        {
            var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            return Process.Start(info)!;
        }
    }

    /// <summary>--name value pairs.</summary>
    private sealed class Args(Dictionary<string, string> values)
    {
        public static Args Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < args.Length; i += 2)
            {
                values[args[i].TrimStart('-')] = args[i + 1];
            }

            return new Args(values);
        }

        public string? Get(string name) => values.GetValueOrDefault(name);
    }
}
