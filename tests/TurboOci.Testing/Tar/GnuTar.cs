using System.Text;

namespace TurboOci.Testing.Tar;

/// <summary>Reads generated layers with the real GNU tar, streamed (the layer is never written to disk).</summary>
public static class GnuTar
{
    /// <summary>
    /// Extracts <paramref name="layer"/> into <paramref name="directory"/> keeping numeric owners, modes and
    /// every xattr namespace, as root does (whiteout files are extracted as the plain files they are).
    /// </summary>
    public static void Extract(TarLayerBuilder layer, string directory) =>
        Tool.RunFilterChecked("tar", ["-x", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", "-", "-C", directory],
            layer.WriteTo, Stream.Null);

    /// <summary>`tar -t` (or `-tv` when <paramref name="verbose"/>) of the layer, names printed literally.</summary>
    public static string List(TarLayerBuilder layer, bool verbose = false)
    {
        using var listing = new MemoryStream();
        Tool.RunFilterChecked("tar", ["--quoting-style=literal", "--numeric-owner", verbose ? "-tvf" : "-tf", "-"], layer.WriteTo, listing);
        return Encoding.UTF8.GetString(listing.ToArray());
    }
}
