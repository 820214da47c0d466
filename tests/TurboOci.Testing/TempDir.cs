namespace TurboOci.Testing;

/// <summary>
/// A fresh scratch folder deleted on Dispose. It refuses to delete itself while anything is still mounted
/// inside it, so a leaked mount can never turn cleanup into wiping a mounted image.
/// </summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "turbooci-test-")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
    }

    private TempDir(string prefix, string parent)
    {
        Path = System.IO.Path.Combine(parent, prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    /// <summary>
    /// A scratch folder on tmpfs (/dev/shm) when there is one: for tests that create tens of thousands of
    /// small files, where a busy disk's metadata journal would dominate. Keep the data small: it is RAM.
    /// </summary>
    public static TempDir InMemory(string prefix = "turbooci-test-") =>
        Directory.Exists("/dev/shm") ? new TempDir(prefix, "/dev/shm") : new TempDir(prefix);

    /// <summary>The folder's absolute path.</summary>
    public string Path { get; }

    /// <summary>The path of a file (or folder) named <paramref name="name"/> inside this folder; not created.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (!Directory.Exists(Path))
        {
            return;
        }

        var mounted = Mounts.Under(Path);
        if (mounted.Count > 0)
        {
            throw new InvalidOperationException($"not deleting {Path}: still mounted inside it: {string.Join(", ", mounted)}");
        }

        Directory.Delete(Path, recursive: true);
    }
}
