using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using TurboOci.Formats.ZFile;
using TurboOci.Storage;

namespace TurboOci.Benchmarks.ZFile;

/// <summary>
/// ZFile sequential decode throughput against the lz4 and zstd command-line tools, on the same data in
/// the same run. Each side decodes the whole file from the page cache, discards the output, best of N.
/// <list type="bullet">
/// <item>LZ4, 4 KiB blocks: us = ZFileReader over a 4 KiB-block LZ4 ZFile (CRC-32C checked on every block);
/// peer = <c>lz4 -d</c> of an LZ4 frame made by <c>lz4 -B4096</c>, which cuts the input into independent
/// 4 KiB blocks (the same shape; lz4 also checks its frame's xxHash32 content checksum).</item>
/// <item>zstd, 64 KiB blocks: us = ZFileReader over a 64 KiB-block zstd ZFile; peer = <c>zstd -d</c> of the
/// very same compressed frames, concatenated (a valid multi-frame zstd stream: the decoders see identical
/// input). For reference also <c>zstd -d</c> of the tool's own single-frame <c>zstd -3</c> output.</item>
/// </list>
/// Usage: peer zfile-decode [--data FILE] [--size MiB] [--runs N] [--work DIR]
/// </summary>
public sealed class ZFileDecodePeerBenchmark : IPeerBenchmark
{
    public string Name => "zfile-decode";

    public string Description => "ZFile sequential decode MB/s vs lz4 -d (4 KiB blocks) and zstd -d (64 KiB blocks)";

    public int Run(string[] args)
    {
        if (BenchArgs.Text(args, "--decode") is { } only)
        {
            // Child mode: one decode in a fresh process, so it is timed exactly like the tools.
            for (var i = BenchArgs.Int(args, "--repeat", 1); i > 0; i--)
            {
                DecodeZFile(only, BenchArgs.Int(args, "--threads", Environment.ProcessorCount));
            }

            return 0;
        }

        var sizeMiB = BenchArgs.Int(args, "--size", 256);
        var runs = BenchArgs.Int(args, "--runs", 5);
        var work = BenchArgs.Text(args, "--work") ?? Path.Combine(Path.GetTempPath(), "turbooci-bench-zfile");
        Directory.CreateDirectory(work);
        var data = BenchArgs.Text(args, "--data") ?? BuildCorpus(Path.Combine(work, $"corpus-{sizeMiB}m.bin"), sizeMiB * (1L << 20));
        var length = new FileInfo(data).Length;
        Console.WriteLine($"data: {data}, {length / 1e6:0.0} MB; best of {runs} runs; {Environment.ProcessorCount} cores; {Tool("lz4", "--version")}; {Tool("zstd", "--version")}");

        // Derived files are cached, so they are named after the data they were made from: a run with
        // another --size or --data must never compare our decode of one corpus with a peer's of another.
        var stem = Path.Combine(work, Path.GetFileNameWithoutExtension(data));
        var lz4ZFile = stem + ".lz4-4k.zfile";
        var zstdZFile = stem + ".zstd-64k.zfile";
        Compress(data, lz4ZFile, new ZFileWriterOptions { Algorithm = ZFileAlgorithm.Lz4, BlockSize = 4096 });
        Compress(data, zstdZFile, new ZFileWriterOptions { Algorithm = ZFileAlgorithm.Zstd, BlockSize = 65536 });
        var lz4Frame = stem + ".B4096.lz4";
        RunTool("lz4", "-q", "-f", "-B4096", data, lz4Frame);
        var zstdFrames = stem + ".zfile-frames.zst";
        ExtractZstdFrames(zstdZFile, zstdFrames);
        var zstdOwn = stem + ".zstd3.zst";
        RunTool("zstd", "-q", "-f", "-3", "--single-thread", data, "-o", zstdOwn);

        Console.WriteLine();
        Console.WriteLine("Every case runs as its own process timed by bash's time builtin; ours is the warm cost per decode (start-up and JIT taken out).");
        Console.WriteLine("MB/s wall = uncompressed MB / best wall time; MB/s cpu = uncompressed MB / best user+sys CPU time");
        Console.WriteLine("(CPU time is what to compare on a busy machine: the tools decode on one thread).");
        Console.WriteLine($"{"case",-46} {"compressed",12} {"MB/s wall",10} {"MB/s cpu",9}");
        var oursLz4One = MeasureSelf("ZFileReader lz4 4 KiB blocks, 1 thread", lz4ZFile, length, runs, 1);
        var oursLz4 = MeasureSelf($"ZFileReader lz4 4 KiB blocks, {Environment.ProcessorCount} threads", lz4ZFile, length, runs, Environment.ProcessorCount);
        var peerLz4 = MeasureTool("lz4 -d (lz4 -B4096 frame: 4 KiB blocks)", lz4Frame, length, runs, "lz4", "-d", "-q", "-f", lz4Frame, "/dev/null");
        var oursZstdOne = MeasureSelf("ZFileReader zstd 64 KiB blocks, 1 thread", zstdZFile, length, runs, 1);
        var oursZstd = MeasureSelf($"ZFileReader zstd 64 KiB blocks, {Environment.ProcessorCount} threads", zstdZFile, length, runs, Environment.ProcessorCount);
        var peerZstd = MeasureTool("zstd -d (same 64 KiB frames, concatenated)", zstdFrames, length, runs, "zstd", "-d", "-q", "-f", zstdFrames, "-o", "/dev/null");
        var peerZstdOwn = MeasureTool("zstd -d (zstd -3 single frame, for reference)", zstdOwn, length, runs, "zstd", "-d", "-q", "-f", zstdOwn, "-o", "/dev/null");

        Console.WriteLine();
        Report("lz4  4 KiB ", "lz4 -d ", 0.65, oursLz4One, oursLz4, peerLz4);
        Report("zstd 64 KiB", "zstd -d", 0.95, oursZstdOne, oursZstd, peerZstd);
        Console.WriteLine($"zstd's own single-frame file decodes at {peerZstdOwn.Cpu:0} MB/s cpu: the 64 KiB frames cost it {1 - (peerZstd.Cpu / peerZstdOwn.Cpu):P0}.");
        return 0;
    }

    /// <summary>Ratios: per CPU second (1 thread vs the single-threaded tool) and wall clock (all cores vs the tool).</summary>
    private static void Report(string name, string tool, double target, Speed oneThread, Speed allCores, Speed peer)
    {
        var cpuRatio = oneThread.Cpu / peer.Cpu;
        var wallRatio = allCores.Wall / peer.Wall;
        Console.WriteLine($"ratio {name}: {cpuRatio:0.00}x {tool} per CPU second, 1 thread ({(cpuRatio >= target ? "MET" : "NOT MET")}, target >= {target:0.00}x); " +
            $"wall clock with {Environment.ProcessorCount} threads: {wallRatio:0.00}x ({(wallRatio >= target ? "MET" : "NOT MET")})");
    }

    private readonly record struct Speed(double Wall, double Cpu);

    /// <summary>The whole file through ZFileReader in 1 MiB sequential reads, as a block device's readahead would.</summary>
    private static void DecodeZFile(string path, int threads)
    {
        using var file = FileBlockSource.OpenRead(path);
        using var zfile = ZFileReader.Open(file);
        zfile.DecodeParallelism = threads;
        var buffer = new byte[1 << 20];
        for (var offset = 0L; offset < zfile.Size;)
        {
            offset += zfile.ReadAt(offset, buffer);
        }
    }

    /// <summary>
    /// Our decode in child processes timed by the same bash builtin as the tools, so a busy machine skews
    /// both sides alike. A child decoding once pays .NET start-up and JIT; one decoding 1 + K times pays them
    /// once too, so the difference over K is the cost of a warm decode, what a long-running daemon pays.
    /// </summary>
    private static Speed MeasureSelf(string name, string zfile, long uncompressed, int runs, int threads)
    {
        const int Extra = 4;
        string[] Command(int repeat) =>
            ["dotnet", typeof(ZFileDecodePeerBenchmark).Assembly.Location, "peer", "zfile-decode", "--decode", zfile,
             "--threads", threads.ToString(CultureInfo.InvariantCulture), "--repeat", repeat.ToString(CultureInfo.InvariantCulture)];
        var once = Time(zfile, runs, Command(1));
        var many = Time(zfile, runs, Command(1 + Extra));
        return Print(name, zfile, uncompressed, (many.Wall - once.Wall) / Extra, (many.Cpu - once.Cpu) / Extra);
    }

    /// <summary>A tool, timed by bash's time builtin: wall, and user+sys CPU of the tool itself.</summary>
    private static Speed MeasureTool(string name, string compressed, long uncompressed, int runs, params string[] command)
    {
        var (wall, cpu) = Time(compressed, runs, command);
        return Print(name, compressed, uncompressed, wall, cpu);
    }

    /// <summary>Best wall and best user+sys CPU seconds of a command over runs, after one warm-up run.</summary>
    private static (double Wall, double Cpu) Time(string input, int runs, params string[] command)
    {
        File.ReadAllBytes(input); // into the page cache, for every contender alike
        var line = string.Join(' ', command.Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
        var bestWall = double.MaxValue;
        var bestCpu = double.MaxValue;
        for (var i = 0; i <= runs; i++)
        {
            var info = new ProcessStartInfo("bash") { RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"TIMEFORMAT='%3R %3U %3S'; time {line}");
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{line} failed: {stderr}");
            }

            var times = stderr.Trim().Split('\n')[^1].Split(' ').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
            if (i > 0) // the first run only warms the page cache and the binary
            {
                bestWall = Math.Min(bestWall, times[0]);
                bestCpu = Math.Min(bestCpu, times[1] + times[2]);
            }
        }

        return (bestWall, bestCpu);
    }

    private static Speed Print(string name, string compressed, long uncompressed, double wall, double cpu)
    {
        var speed = new Speed(uncompressed / 1e6 / wall, uncompressed / 1e6 / Math.Max(cpu, 1e-3));
        Console.WriteLine($"{name,-46} {new FileInfo(compressed).Length / 1e6,9:0.0} MB {speed.Wall,10:0} {speed.Cpu,9:0}");
        return speed;
    }

    private static void Compress(string input, string output, ZFileWriterOptions options)
    {
        if (File.Exists(output) && File.GetLastWriteTimeUtc(output) > File.GetLastWriteTimeUtc(input))
        {
            return;
        }

        using var source = FileBlockSource.OpenRead(input);
        using var stream = File.Create(output);
        ZFileWriter.Write(source, stream, options);
    }

    /// <summary>Writes the ZFile's zstd frames (CRCs dropped) back to back: a multi-frame stream zstd -d accepts.</summary>
    private static void ExtractZstdFrames(string zfilePath, string output)
    {
        using var file = FileBlockSource.OpenRead(zfilePath);
        using var zfile = ZFileReader.Open(file);
        using var stream = File.Create(output);
        var buffer = new byte[ZFileWriter.MaxStoredBlockLength];
        for (var i = 0; i < zfile.BlockCount; i++)
        {
            var stored = zfile.GetStoredBlockLength(i);
            file.ReadExactlyAt(zfile.GetStoredBlockOffset(i), buffer.AsSpan(0, stored));
            if (BinaryPrimitives.ReadUInt32LittleEndian(buffer) != 0xFD2FB528)
            {
                throw new InvalidDataException($"block {i} is not a zstd frame");
            }

            stream.Write(buffer, 0, stored - 4);
        }
    }

    /// <summary>
    /// A container-layer-like corpus: the files under /usr (binaries, libraries, text) in sorted order,
    /// skipping already-compressed files. overlaybd cannot read a 64 KiB block that does not compress
    /// (and our writer refuses to write one), so 64 KiB pieces that zstd cannot shrink to 65,532 bytes
    /// are left out too; how many is printed.
    /// </summary>
    private static string BuildCorpus(string path, long size)
    {
        if (File.Exists(path) && new FileInfo(path).Length == size)
        {
            return path;
        }

        string[] compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip", ".jar", ".png", ".jpg", ".jpeg", ".gif", ".svgz", ".woff", ".woff2", ".deb", ".pyc", ".whl", ".tgz"];
        using var output = File.Create(path);
        using var zstd = new ZstdSharp.Compressor(3);
        var piece = new byte[65536];
        var scratch = new byte[70000];
        var fill = 0;
        var written = 0L;
        var dropped = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        foreach (var root in new[] { "/usr/lib", "/usr/share", "/usr/bin" })
        {
            foreach (var file in Directory.EnumerateFiles(root, "*", options).Order(StringComparer.Ordinal))
            {
                if (compressed.Any(e => file.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                byte[] bytes;
                try
                {
                    bytes = File.ReadAllBytes(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                for (var used = 0; used < bytes.Length;)
                {
                    var take = Math.Min(bytes.Length - used, piece.Length - fill);
                    bytes.AsSpan(used, take).CopyTo(piece.AsSpan(fill));
                    fill += take;
                    used += take;
                    if (fill < piece.Length)
                    {
                        continue;
                    }

                    fill = 0;
                    if (zstd.Wrap(piece, scratch) + 4 > ZFileWriter.MaxStoredBlockLength)
                    {
                        dropped++;
                        continue;
                    }

                    var keep = (int)Math.Min(piece.Length, size - written);
                    output.Write(piece, 0, keep);
                    written += keep;
                    if (written == size)
                    {
                        Console.WriteLine($"corpus: left out {dropped} incompressible 64 KiB pieces ({dropped * 65536L / 1e6:0.0} MB)");
                        return path;
                    }
                }
            }
        }

        throw new InvalidOperationException($"/usr holds only {written} usable bytes; pass --data FILE or a smaller --size");
    }

    private static void RunTool(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr}");
        }
    }

    private static string Tool(string tool, string arg)
    {
        var info = new ProcessStartInfo(tool, arg) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var text = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return text.Trim().Trim('*').Trim().Split(',')[0];
    }
}
