using TurboOci.Images;
using TurboOci.Testing;
using TurboOci.Testing.Tar;

namespace TurboOci.Cli.Tests.Device;

/// <summary>Layer stacks for the device tests, made by the real <c>turbooci index</c>.</summary>
internal static class DeviceStacks
{
    public static string ReferenceLayer => RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz");

    /// <summary>overlaybd's reference layer indexed on the built-in base; returns the config's path.</summary>
    public static string IndexReferenceLayer(DaemonSession session, string name = "stack") => Index(session, name, [ReferenceLayer]);

    /// <summary>The synthetic image (whiteouts, hard links, long names, xattrs...) as gzip blobs, indexed; returns the config and the tree it must show.</summary>
    public static (string Config, FileTree Expected) IndexSyntheticImage(DaemonSession session, string name = "synthetic")
    {
        var layers = SyntheticLayers.Image(includeWideDirectory: false);
        var blobs = new List<string>();
        for (var i = 0; i < layers.Count; i++)
        {
            var blob = session.File($"{name}-layer{i}.tar.gz");
            using (var file = File.Create(blob))
            {
                LayerCompressor.Compress(layers[i].WriteTo, file, LayerCompression.Gzip);
            }

            blobs.Add(blob);
        }

        return (Index(session, name, blobs), LayerModel.Merge(layers));
    }

    /// <summary>Adds a writable upper (not created yet: attach --rw creates it) and a result file to a config, in place.</summary>
    public static ImageConfig AddUpper(string configPath)
    {
        var config = ImageConfig.Load(configPath) with
        {
            Upper = new UpperLayer { Data = "upper/data", Index = "upper/index" },
            ResultFile = "result",
        };
        Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(configPath)!, "upper"));
        File.WriteAllBytes(configPath, config.ToJson());
        return ImageConfig.Load(configPath);
    }

    /// <summary>Indexes <paramref name="blobs"/> (lowest first) with the real <c>turbooci index</c>; returns the config's path.</summary>
    public static string Index(DaemonSession session, string name, IEnumerable<string> blobs)
    {
        var dir = session.File(name);
        var (code, _, stderr) = CliRunner.Run(["index", .. blobs, "--output", dir]);
        Assert.True(code == 0, stderr);
        return Path.Combine(dir, "config.v1.json");
    }
}
