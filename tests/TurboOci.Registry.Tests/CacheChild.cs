using TurboOci.Registry.Cache;

namespace TurboOci.Registry.Tests;

/// <summary>
/// The entry point of this assembly when run as a program: a reader the crash test starts and kills with
/// SIGKILL mid-download. It reads a blob sequentially through the remote source and the disk cache and
/// prints one line per unit read, so the parent knows the cache is being written.
/// </summary>
public static class CacheChild
{
    public const string Verb = "cache-child";

    public static int Main(string[] args)
    {
        if (args is not [Verb, var reference, var digestText, var sizeText, var cacheDir, var unitText])
        {
            Console.Error.WriteLine($"usage: {Verb} REF DIGEST SIZE CACHE_DIR UNIT");
            return 1;
        }

        var unit = int.Parse(unitText, System.Globalization.CultureInfo.InvariantCulture);
        using var client = new RegistryClient();
        var cache = new DiskRangeCache(cacheDir, long.MaxValue / 4);
        using var source = RemoteBlobSource.OpenAsync(client, ImageReference.Parse(reference), Digest.Parse(digestText),
            long.Parse(sizeText, System.Globalization.CultureInfo.InvariantCulture),
            new RemoteBlobOptions { FetchUnit = unit, Cache = cache, ReadAheadUnits = 8 }).GetAwaiter().GetResult();
        var buffer = new byte[unit];
        for (long offset = 0; offset < source.Size; offset += unit)
        {
            source.ReadAt(offset, buffer);
            Console.Out.WriteLine($"read {offset}");
            Console.Out.Flush();
            Thread.Sleep(20); // slow enough that the parent kills us mid-blob, with fetches and cache writes in flight
        }

        return 0;
    }
}
