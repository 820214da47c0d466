namespace TurboOci.Testing.Tar;

/// <summary>The Debian minbase image tools/corpus builds: its OCI layout, umoci's unpacked view, the rootfs tar.</summary>
public sealed record DebianCorpus(string OciLayout, string Tag, string ExpectedRootfs, string RootfsTar)
{
    /// <summary>The reference umoci and skopeo take.</summary>
    public string Reference => $"{OciLayout}:{Tag}";
}

/// <summary>
/// The slow, realistic corpora of tools/corpus (cached under .cache/corpus). The first call builds what is
/// missing, which takes minutes and needs the Debian mirror; later calls only look.
/// </summary>
public static class Corpus
{
    private static readonly TimeSpan s_buildTimeout = TimeSpan.FromMinutes(40);
    private static readonly Lock s_lock = new();

    public static string Folder => Path.Combine(RepoPaths.Cache, "corpus");

    /// <summary>The 4-layer Debian minbase image (see tools/corpus for what each layer changes).</summary>
    public static DebianCorpus DebianMinbase()
    {
        var root = Path.Combine(Folder, "debian-minbase");
        var corpus = new DebianCorpus(Path.Combine(root, "oci"), "latest", Path.Combine(root, "expected", "rootfs"), Path.Combine(root, "rootfs.tar"));
        EnsureBuilt("debian", Path.Combine(corpus.OciLayout, "index.json"), corpus.ExpectedRootfs, corpus.RootfsTar);
        return corpus;
    }

    /// <summary>The single large "usr tree" layer (.tar.gz, about 1.2 GiB uncompressed) for benchmarks.</summary>
    public static string UsrTree()
    {
        var path = Path.Combine(Folder, "usr-tree", "usr-tree.tar.gz");
        EnsureBuilt("usr-tree", path);
        return path;
    }

    private static void EnsureBuilt(string part, params string[] outputs)
    {
        lock (s_lock)
        {
            if (outputs.All(o => File.Exists(o) || Directory.Exists(o)))
            {
                return;
            }

            Tool.RunChecked(Path.Combine(RepoPaths.Root, "tools", "corpus"), [part], timeout: s_buildTimeout);
        }
    }
}
