namespace TurboOci.Formats.Ext4.Oci;

/// <summary>
/// Lexical path cleaning for layer entries: "./" and empty components vanish, ".." pops a component
/// but never climbs above the root, absolute paths are taken relative to the root. Symlinks play no
/// part: the result can never name anything outside the filesystem being built.
/// </summary>
public static class LayerPath
{
    /// <summary>The components of the cleaned path; empty for the root itself.</summary>
    public static string[] Normalize(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            switch (part)
            {
                case "" or ".":
                    break;
                case "..":
                    if (parts.Count > 0)
                    {
                        parts.RemoveAt(parts.Count - 1);
                    }

                    break;
                default:
                    parts.Add(part);
                    break;
            }
        }

        return [.. parts];
    }

    public static string Join(IEnumerable<string> components) => string.Join('/', components);
}
