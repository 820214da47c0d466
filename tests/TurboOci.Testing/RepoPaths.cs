namespace TurboOci.Testing;

/// <summary>Where the repository, its fixtures and its scratch space are, found from the test binary.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The repository root: the folder holding TurboOci.sln.</summary>
    public static string Root => s_root.Value;

    /// <summary>The project's committed fixtures. Tests never read ../shared.</summary>
    public static string Fixtures => Path.Combine(Root, "fixtures");

    /// <summary>A fixture file by its path under fixtures/, checked to exist.</summary>
    public static string Fixture(params string[] parts)
    {
        var path = Path.Combine([Fixtures, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new FileNotFoundException($"fixture {Path.Combine(parts)} is missing under {Fixtures}", path);
        }

        return path;
    }

    /// <summary>The git-ignored cache of built corpora (tools/corpus).</summary>
    public static string Cache => Path.Combine(Root, ".cache");

    private static string FindRoot()
    {
        var candidates = new[]
        {
            Environment.GetEnvironmentVariable("TURBOOCI_ROOT"),
            typeof(RepoPaths).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
                .Cast<System.Reflection.AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "TurboOci.RepositoryRoot")?.Value,
        };
        foreach (var candidate in candidates)
        {
            if (candidate is not null && File.Exists(Path.Combine(candidate, "TurboOci.sln")))
            {
                return Path.GetFullPath(candidate);
            }
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TurboOci.sln")))
            {
                return dir.FullName;
            }
        }

        // Build output may live outside the tree (TURBOOCI_ARTIFACTS); fall back to the working directory.
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TurboOci.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (TurboOci.sln) above the test binaries or the working directory");
    }
}
