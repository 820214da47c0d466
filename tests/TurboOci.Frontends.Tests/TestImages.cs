using TurboOci.Testing;

namespace TurboOci.Frontends.Tests;

/// <summary>Raw ext4 images made by mke2fs from a generated directory, and tree comparison.</summary>
internal static class TestImages
{
    /// <summary>Fills <paramref name="root"/> with a small, varied tree: nested folders, empty, small and multi-megabyte files, a symlink.</summary>
    public static void WriteTree(string root, int seed)
    {
        var random = new Random(seed);
        Directory.CreateDirectory(Path.Combine(root, "etc", "conf.d"));
        Directory.CreateDirectory(Path.Combine(root, "usr", "lib", "deep", "er"));
        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        File.WriteAllText(Path.Combine(root, "etc", "hostname"), "turbooci\n");
        File.WriteAllBytes(Path.Combine(root, "etc", "conf.d", "empty"), []);
        for (var i = 0; i < 20; i++)
        {
            var data = new byte[random.Next(1, 70_000)];
            random.NextBytes(data);
            File.WriteAllBytes(Path.Combine(root, "usr", "lib", $"lib{i}.so"), data);
        }

        var big = new byte[3 << 20];
        random.NextBytes(big);
        File.WriteAllBytes(Path.Combine(root, "usr", "lib", "deep", "er", "big.bin"), big);
        File.CreateSymbolicLink(Path.Combine(root, "etc", "link"), "hostname");
    }

    /// <summary>A raw ext4 image of <paramref name="sizeMiB"/> MiB holding the tree of <paramref name="sourceDir"/> (mke2fs -d, no mount needed).</summary>
    public static void MakeExt4(string sourceDir, string imagePath, int sizeMiB)
    {
        File.Delete(imagePath);
        Tool.RunChecked("mke2fs", "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-d", sourceDir, imagePath, $"{sizeMiB}M");
    }

    /// <summary>Every entry under a root as "path type [sha256|target]", sorted, for comparing two trees.</summary>
    public static IReadOnlyList<string> Describe(string root, params string[] ignore)
    {
        var lines = new List<string>();
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var relative = Path.GetRelativePath(root, entry.FullName);
            if (ignore.Any(i => relative == i || relative.StartsWith(i + "/", StringComparison.Ordinal)))
            {
                continue;
            }

            lines.Add(entry switch
            {
                _ when entry.LinkTarget is { } target => $"{relative} link {target}",
                DirectoryInfo => $"{relative} dir",
                FileInfo file => $"{relative} file {file.Length} {Sha256(file.FullName)}",
                _ => $"{relative} other",
            });
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    public static string Sha256(string path) => FileHashes.Sha256OfFile(path);
}
