using System.Formats.Tar;
using System.IO.Compression;

namespace TurboOci.Images.Indexing;

/// <summary>
/// overlaybd's stock base layer <c>ext4_64</c> (an empty 64 GiB ext4 in a ZFile-compressed committed LSMT, Appendix A
/// of the formats reference), embedded as overlaybd ships it (<c>baselayers/ext4_64.tar.gz</c>, 66 KB), so the
/// indexer works anywhere without overlaybd installed.
/// </summary>
public static class StockBaseLayer
{
    public const string FileName = "ext4_64";
    private const string ResourceName = "TurboOci.Images.Indexing.ext4_64.tar.gz";

    /// <summary>Writes <c>ext4_64</c> to <paramref name="path"/> (replacing it) and returns the path.</summary>
    public static string ExtractTo(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var resource = typeof(StockBaseLayer).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the embedded resource {ResourceName} is missing from this build");
        using var gzip = new GZipStream(resource, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && Path.GetFileName(entry.Name) == FileName)
            {
                entry.ExtractToFile(path, overwrite: true);
                return path;
            }
        }

        throw new InvalidDataException($"the embedded {ResourceName} holds no {FileName}");
    }
}
