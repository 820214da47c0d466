using System.Diagnostics;
using System.Globalization;
using TurboOci.Registry.Cache;

namespace TurboOci.Registry.Tests;

/// <summary>
/// The entry point of this assembly when run as a program: a reader the crash tests start and kill with
/// SIGKILL mid-download. It reads a blob through the remote source and a disk cache, sequentially (one
/// thread, read-ahead on) or, given THREADS and CAPACITY, at random offsets from that many threads into a
/// cache of that many bytes, and prints one line per read so the parent knows the cache is being written.
/// </summary>
public static class CacheChild
{
    public const string Verb = "cache-child";

    /// <summary>
    /// Starts this assembly as a child reader with <paramref name="args"/> (after the verb), waits until it
    /// reported <paramref name="reads"/> reads, and kills it with SIGKILL: no cleanup, fetches and cache
    /// writes in flight.
    /// </summary>
    public static async Task RunAndKillAfterAsync(int reads, params IEnumerable<object> args)
    {
        var startInfo = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new object[] { "exec", typeof(CacheChild).Assembly.Location, Verb }.Concat(args))
        {
            startInfo.ArgumentList.Add(Convert.ToString(arg, CultureInfo.InvariantCulture)!);
        }

        using var child = Process.Start(startInfo)!;
        var stderr = child.StandardError.ReadToEndAsync();
        var lines = 0;
        while (lines < reads && await child.StandardOutput.ReadLineAsync() is { } line)
        {
            lines += line.StartsWith("read ", StringComparison.Ordinal) ? 1 : 0;
        }

        child.Kill(entireProcessTree: true);
        await child.WaitForExitAsync();
        Assert.True(lines == reads, $"child stopped after {lines} reads: {await stderr}");
    }

    public static int Main(string[] args)
    {
        if (args is not [Verb, var reference, var digestText, var sizeText, var cacheDir, var unitText, ..] || args.Length is not (6 or 8))
        {
            Console.Error.WriteLine($"usage: {Verb} REF DIGEST SIZE CACHE_DIR UNIT [THREADS CAPACITY]");
            return 1;
        }

        var unit = int.Parse(unitText, CultureInfo.InvariantCulture);
        var threads = args.Length == 8 ? int.Parse(args[6], CultureInfo.InvariantCulture) : 0;
        var capacity = args.Length == 8 ? long.Parse(args[7], CultureInfo.InvariantCulture) : long.MaxValue / 4;
        using var client = new RegistryClient();
        var cache = new DiskRangeCache(cacheDir, capacity);
        using var source = RemoteBlobSource.OpenAsync(client, ImageReference.Parse(reference), Digest.Parse(digestText),
            long.Parse(sizeText, CultureInfo.InvariantCulture),
            new RemoteBlobOptions { FetchUnit = unit, Cache = cache, ReadAheadUnits = 8 }).GetAwaiter().GetResult();
        var output = new Lock();
        void Report(long offset)
        {
            lock (output)
            {
                Console.Out.WriteLine($"read {offset}");
                Console.Out.Flush();
            }
        }

        if (threads == 0)
        {
            var buffer = new byte[unit];
            for (long offset = 0; offset < source.Size; offset += unit)
            {
                source.ReadAt(offset, buffer);
                Report(offset);
                Thread.Sleep(20); // slow enough that the parent kills us mid-blob, with fetches and cache writes in flight
            }

            return 0;
        }

        var workers = Enumerable.Range(0, threads).Select(thread => new Thread(() =>
        {
            var random = new Random(1000 + thread);
            var buffer = new byte[2 * unit];
            while (true)
            {
                var offset = random.NextInt64(0, source.Size);
                source.ReadAt(offset, buffer.AsSpan(0, random.Next(1, buffer.Length)));
                Report(offset);
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join()); // until killed
        return 0;
    }
}
