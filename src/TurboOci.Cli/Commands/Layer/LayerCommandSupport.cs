using System.Globalization;
using TurboOci.Cli.Commands.ZFile;
using TurboOci.Formats.Lsmt;
using TurboOci.Formats.ZFile;

namespace TurboOci.Cli.Commands.Layer;

/// <summary>What the layer verbs share: the group help, size parsing, output packaging.</summary>
internal static class LayerCommandSupport
{
    public const string GroupHelp = "Create, commit, merge and inspect overlaybd LSMT layers (writable data+index pairs and committed blobs).";

    /// <summary>"1073741824", "1G", "1GiB", "64G", "512M": bytes, or binary units with a suffix.</summary>
    public static long ParseSize(string text, string option)
    {
        var value = text.Trim();
        long unit = 1;
        foreach (var (suffix, factor) in new[] { ("TiB", 1L << 40), ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("T", 1L << 40), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10) })
        {
            if (value.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                value = value[..^suffix.Length];
                unit = factor;
                break;
            }
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > long.MaxValue / unit)
        {
            throw new ArgumentException($"{option} '{text}' is not a size: give bytes (1073741824) or a binary unit (1G, 64GiB, 512M)");
        }

        var bytes = number * unit;
        if (bytes % LsmtConstants.SectorSize != 0)
        {
            throw new ArgumentException($"{option} {text} is not a multiple of 512 bytes");
        }

        return bytes;
    }

    /// <summary>The packaging chosen by --compress/--block-size/--tar.</summary>
    public static BlobPackaging Packaging(ZFileAlgorithm? compress, string blockSize, bool tar, bool overwriteHeader = true)
    {
        if (tar && compress is null)
        {
            throw new ArgumentException("--tar wraps a compressed layer, as overlaybd-commit -z -t does: add --compress lz4 or --compress zstd");
        }

        return new BlobPackaging
        {
            Compression = compress,
            BlockSize = ZFileCommandSupport.ParseBlockSize(blockSize),
            Tar = tar,
            OverwriteHeader = overwriteHeader,
        };
    }

    public static string Describe(BlobPackaging packaging) =>
        packaging.Compression is { } algorithm
            ? $"ZFile {algorithm}, {packaging.BlockSize} B blocks{(packaging.Tar ? ", tar envelope" : string.Empty)}"
            : "uncompressed";
}
