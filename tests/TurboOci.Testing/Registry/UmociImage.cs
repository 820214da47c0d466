namespace TurboOci.Testing.Registry;

/// <summary>Small OCI layouts built by umoci, an independent OCI tool, for registry and copy tests.</summary>
public static class UmociImage
{
    /// <summary>
    /// A two-layer image tagged <paramref name="tag"/> in <paramref name="layout"/>: the first layer adds a
    /// text file and 200 kB of seeded random data, the second adds another file. <paramref name="scratch"/>
    /// holds umoci's unpacked bundles.
    /// </summary>
    public static void BuildTwoLayers(string layout, string scratch, string tag = "v1")
    {
        var image = $"{layout}:{tag}";
        Tool.RunChecked("umoci", ["init", "--layout", layout]);
        Tool.RunChecked("umoci", ["new", "--image", image]);
        var first = Path.Combine(scratch, "bundle-1");
        Tool.RunChecked("umoci", ["unpack", "--image", image, first]);
        File.WriteAllText(Path.Combine(first, "rootfs", "hello.txt"), "hello from layer one\n");
        var data = new byte[200_000];
        new Random(11).NextBytes(data);
        File.WriteAllBytes(Path.Combine(first, "rootfs", "data.bin"), data);
        Tool.RunChecked("umoci", ["repack", "--image", image, first]);

        // A fresh unpack per layer: repacking the same bundle twice would not add a second layer.
        var second = Path.Combine(scratch, "bundle-2");
        Tool.RunChecked("umoci", ["unpack", "--image", image, second]);
        File.WriteAllText(Path.Combine(second, "rootfs", "second.txt"), "layer two\n");
        Tool.RunChecked("umoci", ["repack", "--image", image, second]);
        Tool.RunChecked("umoci", ["gc", "--layout", layout]);
    }
}
