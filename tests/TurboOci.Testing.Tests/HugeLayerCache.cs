using TurboOci.Testing.Tar;

namespace TurboOci.Testing.Tests;

/// <summary>
/// The &gt; 4 GiB layer is slow to make (streaming 4 GiB through pigz), so it is made once and kept in the
/// git-ignored cache; the version in the file name changes whenever the layer's description does.
/// </summary>
internal static class HugeLayerCache
{
    private const string FileName = "huge-file-v1.tar.gz";
    private static readonly Lock s_lock = new();

    public static string Get()
    {
        lock (s_lock)
        {
            var folder = Directory.CreateDirectory(Path.Combine(RepoPaths.Cache, "synthetic")).FullName;
            var path = Path.Combine(folder, FileName);
            if (!File.Exists(path))
            {
                var temp = path + $".tmp-{Environment.ProcessId}";
                LayerBlob.Write(SyntheticLayers.HugeFile(), temp, LayerCompression.Pigz);
                File.Move(temp, path, overwrite: true);
            }

            return path;
        }
    }
}
