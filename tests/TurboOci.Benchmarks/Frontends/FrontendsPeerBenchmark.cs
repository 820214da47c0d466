using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TurboOci.Frontends.Fuse;
using TurboOci.Frontends.Nbd;
using TurboOci.Interop.Fuse;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Benchmarks.Frontends;

/// <summary>
/// fio through each frontend on a hot image (in the page cache), against its peers in the same run, for two sources:
/// the raw image file itself, and the same contents as a stack of two uncompressed committed LSMT layers
/// (<see cref="BenchStack"/>: the image, and an upper layer overwriting and trimming extents), whose raw export
/// the peers serve (its sha256 is checked against the stack, and through the FUSE mount, before timing).
/// <list type="bullet">
/// <item>FUSE file + loop device (ours, loop in direct-I/O mode) against a plain <c>losetup</c> of the same file.</item>
/// <item>Our NBD server against <c>qemu-nbd</c> serving the same file, both read by fio's libnbd engine over a Unix socket
/// (this machine has no nbd kernel module).</item>
/// </list>
/// Jobs: 4 KiB random reads at queue depth 1 (mean completion latency) and 16 (IOPS), 1 MiB sequential reads at depth 4 (MB/s).
/// Each job runs --runs times and keeps its best run (lowest latency, highest IOPS and MB/s): on a shared
/// machine the best run is the least disturbed one.
/// The FUSE cases and their losetup peer run interleaved (peer, ours, peer, ours...), and so do qemu-nbd and our
/// NBD server, so a load that comes and goes on a shared machine hits both alike.
/// Usage: peer frontends [--size MiB] [--runtime SECONDS] [--runs N] [--work DIR] [--only fuse|nbd]
///        [--source raw|stack] [--fuse-workers N] [--with-copy]
/// (--only fuse measures the FUSE cases and their losetup peer only, --only nbd the NBD pair; --with-copy adds
/// a FUSE mount that copies READ payloads through a buffer, FuseFileMountOptions.MappedReads = false, the
/// path before mapped replies, for a before/after in the same run.)
/// </summary>
public sealed class FrontendsPeerBenchmark : IPeerBenchmark
{
    public string Name => "frontends";

    public string Description => "fio 4K QD1/QD16 and 1M sequential through FUSE+loop and NBD vs losetup and qemu-nbd";

    public int Run(string[] args)
    {
        var sizeMiB = BenchArgs.Int(args, "--size", 512);
        var runtime = BenchArgs.Int(args, "--runtime", 3);
        var runs = BenchArgs.Int(args, "--runs", 3);
        var work = BenchArgs.Text(args, "--work") ?? Path.Combine(Path.GetTempPath(), "turbooci-bench-frontends");
        var only = BenchArgs.Text(args, "--only");
        if (only is not (null or "fuse" or "nbd"))
        {
            Console.Error.WriteLine($"--only {only}: expected fuse or nbd");
            return 1;
        }

        var sourceKind = BenchArgs.Text(args, "--source");
        if (sourceKind is not (null or "raw" or "stack"))
        {
            Console.Error.WriteLine($"--source {sourceKind}: expected raw or stack");
            return 1;
        }

        Directory.CreateDirectory(work);
        var image = Path.Combine(work, $"raw-{sizeMiB}m.img");
        if (!File.Exists(image) || new FileInfo(image).Length != sizeMiB * (1L << 20))
        {
            using var file = new FileStream(image, FileMode.Create, FileAccess.Write);
            var block = new byte[1 << 20];
            var random = new Random(1);
            for (var i = 0; i < sizeMiB; i++)
            {
                random.NextBytes(block);
                file.Write(block);
            }
        }

        var stackFiles = sourceKind is null or "stack" ? BenchStack.Prepare(image, work) : null;
        foreach (var path in new[] { image }.Concat(stackFiles is null ? [] : [stackFiles.LowerPath, stackFiles.UpperPath, stackFiles.ExportPath]))
        {
            WarmPageCache(path);
        }

        Console.WriteLine($"image: {image}, {sizeMiB} MiB, hot in the page cache; fio {runtime} s per job, best of {runs}; {Environment.ProcessorCount} cores; {Tool("fio", "--version")}; {Tool("qemu-nbd", "--version").Split('\n')[0]}");
        Console.WriteLine("targets (issue 6): QD1 latency <= loop + 40 µs; NBD QD16 IOPS >= 1.0x qemu-nbd; sequential >= 0.8x loop");
        var timing = new Timing(runtime, runs);
        var options = new FuseFileMountOptions { Workers = BenchArgs.Int(args, "--fuse-workers", new FuseFileMountOptions().Workers) };
        if (sourceKind is null or "raw")
        {
            Console.WriteLine();
            Console.WriteLine("== source: the raw image file (FileBlockSource) ==");
            using var raw = FileBlockSource.OpenRead(image);
            MeasureSource(new Served("raw", raw, image, ExpectedSha256: null), work, timing, options, only, args.Contains("--with-copy"));
        }

        if (stackFiles is not null)
        {
            Console.WriteLine();
            Console.WriteLine("== source: LSMT stack of two uncompressed committed layers (peers serve its raw export) ==");
            using var stack = stackFiles.Open();
            var expected = BenchStack.Sha256OfFile(stackFiles.ExportPath);
            MeasureSource(new Served("stack", stack, stackFiles.ExportPath, expected), work, timing, options, only, args.Contains("--with-copy"));
        }

        return 0;
    }

    private sealed record Result(double Qd1LatencyMicroseconds, double Qd16Iops, double SequentialMBps);

    /// <summary>What our frontends serve (<paramref name="Source"/>) and the raw file with the same bytes the peers serve.</summary>
    /// <param name="ExpectedSha256">When set, the FUSE file must read these bytes before anything is timed.</param>
    private sealed record Served(string Label, BlockSource Source, string PeerImage, string? ExpectedSha256);

    private static void MeasureSource(Served served, string work, Timing timing, FuseFileMountOptions options, string? only, bool withCopy)
    {
        Console.WriteLine($"{"case",-52} {"4K QD1 µs",10} {"4K QD16 IOPS",13} {"1M seq MB/s",12}");
        if (only is null or "fuse")
        {
            MeasureFuse(served, work, timing, options, withCopy);
        }

        if (only is null or "nbd")
        {
            var (qemu, nbd) = MeasureNbdPair(served, work, timing);
            Console.WriteLine($"  [{served.Label}] NBD QD16 IOPS: {nbd.Qd16Iops / qemu.Qd16Iops:0.00}x qemu-nbd; QD1 latency: qemu-nbd {nbd.Qd1LatencyMicroseconds - qemu.Qd1LatencyMicroseconds:+0.0;-0.0} µs; sequential {nbd.SequentialMBps / qemu.SequentialMBps:0.00}x qemu-nbd");
        }
    }

    private sealed record Timing(int Runtime, int Runs);

    /// <summary>The FUSE cases against a plain losetup of the image, every job of every case interleaved.</summary>
    private static void MeasureFuse(Served served, string work, Timing timing, FuseFileMountOptions options, bool withCopy)
    {
        var source = served.Source;
        using var fuse = MountFuse(Path.Combine(work, "fuse"), source, options);
        using var copying = withCopy ? MountFuse(Path.Combine(work, "fuse-copy"), source, options with { MappedReads = false }) : null;
        if (served.ExpectedSha256 is { } expected && BenchStack.Sha256OfFile(fuse.FilePath) is var actual && actual != expected)
        {
            throw new InvalidDataException($"the FUSE file of the {served.Label} reads sha256 {actual}, the peers' file has {expected}");
        }

        var peer = LoopDevice.Attach(served.PeerImage, readOnly: true, directIo: false);
        var ourLoop = LoopDevice.Attach(fuse.FilePath, readOnly: true, directIo: true);
        var copyLoop = copying is null ? null : LoopDevice.Attach(copying.FilePath, readOnly: true, directIo: true);
        try
        {
            var cases = new List<(string Name, string Path)>
            {
                ($"losetup of the {(served.ExpectedSha256 is null ? "raw file" : "stack's raw export")} (peer)", peer.Path),
                ($"FUSE file + loop (dio), ours, {served.Label}, {options.Workers} workers", ourLoop.Path),
                ($"FUSE file read directly (O_DIRECT), ours, {served.Label}", fuse.FilePath),
            };
            if (copyLoop is not null)
            {
                cases.Add(($"FUSE file + loop, buffer copy (before), {served.Label}", copyLoop.Path));
            }

            var results = Interleaved(cases.Select(c => (c.Name, BlockJobs(c.Path))).ToArray(), timing);
            var (loop, ours, fileOnly) = (results[0], results[1], results[2]);
            Console.WriteLine($"  [{served.Label}] FUSE+loop QD1 latency: loop + {ours.Qd1LatencyMicroseconds - loop.Qd1LatencyMicroseconds:0.0} µs");
            Console.WriteLine($"  [{served.Label}] FUSE file (no loop) QD1 latency: loop + {fileOnly.Qd1LatencyMicroseconds - loop.Qd1LatencyMicroseconds:0.0} µs");
            Console.WriteLine($"  [{served.Label}] FUSE+loop QD16 IOPS: {ours.Qd16Iops / loop.Qd16Iops:0.00}x loop");
            Console.WriteLine($"  [{served.Label}] FUSE+loop sequential: {ours.SequentialMBps / loop.SequentialMBps:0.00}x loop");
            if (copyLoop is not null)
            {
                var before = results[3];
                Console.WriteLine($"  before (buffer copy): QD1 loop + {before.Qd1LatencyMicroseconds - loop.Qd1LatencyMicroseconds:0.0} µs, QD16 {before.Qd16Iops / loop.Qd16Iops:0.00}x loop, sequential {before.SequentialMBps / loop.SequentialMBps:0.00}x loop");
            }

            var queue = $"/sys/block/loop{ourLoop.Number}";
            Console.WriteLine($"  ({fuse.FileSystem.RequestCount(FuseOpcode.Read)} FUSE READ requests, {fuse.MappedReplies} written from mapped files; " +
                              $"{fuse.FileSystem.MaxWrite >> 10} KiB max transfer; loop on FUSE: dio={File.ReadAllText(queue + "/loop/dio").Trim()}, " +
                              $"max_sectors_kb={File.ReadAllText(queue + "/queue/max_sectors_kb").Trim()})");
        }
        finally
        {
            copyLoop?.Detach();
            ourLoop.Detach();
            peer.Detach();
        }
    }

    private static FuseFileMount MountFuse(string dir, BlockSource source, FuseFileMountOptions options)
    {
        Directory.CreateDirectory(dir);
        FuseFileMount.CleanupStale(dir);
        return FuseFileMount.Mount(dir, source, options);
    }

    /// <summary>qemu-nbd serving the peer file and our NBD server serving the source, both up at once and measured interleaved.</summary>
    private static (Result Qemu, Result Ours) MeasureNbdPair(Served served, string work, Timing timing)
    {
        var qemuSocket = Path.Combine(work, "qemu.sock");
        File.Delete(qemuSocket);
        var start = new ProcessStartInfo("qemu-nbd") { RedirectStandardError = true };
        foreach (var arg in new[] { "--read-only", "--format=raw", "--persistent", "--shared=32", "--cache=writeback", "--aio=threads", "--socket", qemuSocket, served.PeerImage })
        {
            start.ArgumentList.Add(arg);
        }

        using var qemu = Process.Start(start)!;
        var server = NbdServer.Start([new NbdExport("", served.Source)], new NbdServerOptions { UnixSocketPath = Path.Combine(work, "ours.sock") });
        try
        {
            for (var i = 0; i < 200 && !File.Exists(qemuSocket); i++)
            {
                Thread.Sleep(25);
            }

            var results = Interleaved(
            [
                ($"qemu-nbd of the {(served.ExpectedSha256 is null ? "raw file" : "raw export")} (peer, fio libnbd)", NbdJobs($"nbd+unix:///?socket={qemuSocket}")),
                ($"NBD server, ours, {served.Label} (fio libnbd)", NbdJobs(server.UriFor(""))),
            ], timing);
            return (results[0], results[1]);
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            qemu.Kill();
            qemu.WaitForExit();
        }
    }

    private static (string Name, string[] Args)[] BlockJobs(string path) =>
    [
        ("qd1", ["--filename=" + path, "--ioengine=psync", "--direct=1", "--rw=randread", "--bs=4k", "--iodepth=1"]),
        ("qd16", ["--filename=" + path, "--ioengine=libaio", "--direct=1", "--rw=randread", "--bs=4k", "--iodepth=16"]),
        ("seq", ["--filename=" + path, "--ioengine=libaio", "--direct=1", "--rw=read", "--bs=1m", "--iodepth=4"]),
    ];

    private static (string Name, string[] Args)[] NbdJobs(string uri) =>
    [
        ("qd1", ["--ioengine=nbd", "--uri=" + uri, "--rw=randread", "--bs=4k", "--iodepth=1"]),
        ("qd16", ["--ioengine=nbd", "--uri=" + uri, "--rw=randread", "--bs=4k", "--iodepth=16"]),
        ("seq", ["--ioengine=nbd", "--uri=" + uri, "--rw=read", "--bs=1m", "--iodepth=4"]),
    ];

    /// <summary>
    /// Runs each job of every case --runs times, the cases taking turns within a job, and keeps each
    /// case's best run per job (lowest latency, highest IOPS and MB/s): the least disturbed one.
    /// </summary>
    private static Result[] Interleaved((string Name, (string Name, string[] Args)[] Jobs)[] cases, Timing timing)
    {
        var runs = cases.Select(_ => new List<(double LatencyMicroseconds, double Iops, double MBps)>[3]).ToArray();
        for (var job = 0; job < 3; job++)
        {
            for (var c = 0; c < cases.Length; c++)
            {
                runs[c][job] = [];
            }

            for (var run = 0; run < timing.Runs; run++)
            {
                for (var c = 0; c < cases.Length; c++)
                {
                    var (name, args) = cases[c].Jobs[job];
                    runs[c][job].Add(Fio(name, args, timing.Runtime));
                }
            }
        }

        return cases.Select((c, i) =>
        {
            var result = new Result(runs[i][0].Min(r => r.LatencyMicroseconds), runs[i][1].Max(r => r.Iops), runs[i][2].Max(r => r.MBps));
            var spread = $"spread: qd1 {runs[i][0].Min(r => r.LatencyMicroseconds):0.0}-{runs[i][0].Max(r => r.LatencyMicroseconds):0.0}, " +
                         $"qd16 {runs[i][1].Min(r => r.Iops):0}-{runs[i][1].Max(r => r.Iops):0}, seq {runs[i][2].Min(r => r.MBps):0}-{runs[i][2].Max(r => r.MBps):0}";
            Console.WriteLine($"{c.Name,-52} {result.Qd1LatencyMicroseconds,10:0.0} {result.Qd16Iops,13:0} {result.SequentialMBps,12:0}   ({spread})");
            return result;
        }).ToArray();
    }

    private static (double LatencyMicroseconds, double Iops, double MBps) Fio(string name, string[] jobArgs, int runtime)
    {
        var start = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in jobArgs.Concat([$"--name={name}", "--time_based", $"--runtime={runtime}", "--ramp_time=1", "--output-format=json", "--randrepeat=0", "--norandommap"]))
        {
            start.ArgumentList.Add(arg);
        }

        using var fio = Process.Start(start)!;
        var stdout = fio.StandardOutput.ReadToEndAsync();
        var stderr = fio.StandardError.ReadToEndAsync();
        fio.WaitForExit();
        if (fio.ExitCode != 0)
        {
            throw new InvalidOperationException($"fio {string.Join(' ', start.ArgumentList)} failed: {stderr.Result}");
        }

        // Some engines (nbd) print notices before the JSON document.
        var json = stdout.Result[Math.Max(0, stdout.Result.IndexOf('{', StringComparison.Ordinal))..];
        var read = JsonDocument.Parse(json).RootElement.GetProperty("jobs")[0].GetProperty("read");
        return (read.GetProperty("clat_ns").GetProperty("mean").GetDouble() / 1000, read.GetProperty("iops").GetDouble(), read.GetProperty("bw_bytes").GetDouble() / 1e6);
    }

    private static void WarmPageCache(string image)
    {
        using var file = new FileStream(image, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var buffer = new byte[1 << 20];
        while (file.Read(buffer) > 0)
        {
        }
    }

    private static string Tool(string name, string arg)
    {
        var start = new ProcessStartInfo(name, arg) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return output;
    }
}
