using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Registry;
using TurboOci.Testing.Tar;
using TestLayerBlob = TurboOci.Testing.Tar.LayerBlob;

namespace TurboOci.Cli.Tests;

/// <summary>
/// <c>turbooci convert</c> and <c>turbooci meta-pull</c> run as a user runs them, against docker's distribution
/// registry on loopback: what was pushed is read back by skopeo (an independent client), and the node's side is
/// judged by e2fsck and the kernel's mount of the exported disk against the OCI changeset model of the layers.
/// </summary>
public sealed class MetaImageCommandTests : IDisposable
{
    private const string BaseLayerDigest = "sha256:c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9";
    private const string GzipOciLayer = "application/vnd.oci.image.layer.v1.tar+gzip";
    private readonly TempDir _temp = new("meta-cli-");

    [Fact]
    public async Task ConvertPushesTheMetaImageAndMetaPullGivesAStackWhoseDiskIsTheImage()
    {
        var (image, layers) = WriteTwoLayerImage();
        await using var registry = await RegistryServer.StartAsync();
        var source = $"{registry.Host}/cli/app:v1";
        Run("image", "copy", $"oci:{image.LayoutPath}:{image.Tag}", source);

        var convert = Run("convert", source, ":meta");
        var destination = $"{registry.Host}/cli/app:meta";
        Assert.StartsWith($"{destination}: sha256:", convert.Stdout, StringComparison.Ordinal);
        Assert.Contains("2 meta layers", convert.Stdout, StringComparison.Ordinal);

        // skopeo reads back a Docker schema 2 manifest (the convertor's default): the raw base layer, then one
        // meta layer per original layer whose annotations name that layer; the digest we printed is the manifest's.
        var raw = Tool.RunChecked("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout;
        Assert.Contains("sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(raw))), convert.Stdout, StringComparison.Ordinal);
        using var manifest = JsonDocument.Parse(raw);
        var root = manifest.RootElement;
        Assert.Equal("application/vnd.docker.distribution.manifest.v2+json", root.GetProperty("mediaType").GetString());
        Assert.Equal("application/vnd.docker.container.image.v1+json", root.GetProperty("config").GetProperty("mediaType").GetString());
        var descriptors = root.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(
            ["application/vnd.docker.image.rootfs.diff.tar", "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip"],
            descriptors.Select(d => d.GetProperty("mediaType").GetString()));
        Assert.Equal(BaseLayerDigest, descriptors[0].GetProperty("digest").GetString());
        Assert.Equal("0.1.0", Annotation(descriptors[0], "version"));
        for (var i = 0; i < layers.Count; i++)
        {
            var meta = descriptors[i + 1];
            Assert.Equal("0.1.0-turbo.ociv1", Annotation(meta, "version"));
            Assert.Equal(meta.GetProperty("digest").GetString(), Annotation(meta, "blob-digest"));
            Assert.Equal(meta.GetProperty("size").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture), Annotation(meta, "blob-size"));
            Assert.Equal(image.Layers[i].Digest, Annotation(meta, "turbo-oci/target-digest"));
            Assert.Equal(GzipOciLayer, Annotation(meta, "turbo-oci/target-media-type"));
        }

        // The config keeps the source's platform; its diff_ids are the base layer and the two meta tars.
        using var config = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--config", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout);
        using var sourceConfig = JsonDocument.Parse(File.ReadAllBytes(image.BlobPath(image.ConfigDigest)));
        Assert.Equal(sourceConfig.RootElement.GetProperty("architecture").GetString(), config.RootElement.GetProperty("architecture").GetString());
        var diffIds = config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()).ToList();
        Assert.Equal(3, diffIds.Count);
        Assert.Equal(BaseLayerDigest, diffIds[0]);

        // Converting the meta image again is refused as bad data, before anything is pushed.
        var again = CliRunner.Run("convert", destination, ":meta2");
        Assert.Equal(ExitCodes.BadData, again.Code);
        Assert.Contains($"{destination} is already an overlaybd or TurboOCI image", again.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(0, Tool.Run("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{registry.Host}/cli/app:meta2").ExitCode);

        // The node's side: meta-pull, then export the stack it wrote; e2fsck and the kernel judge the disk.
        var node = _temp.File("node");
        var pull = Run("meta-pull", destination, "-o", node);
        Assert.Contains("3 lowers", pull.Stdout, StringComparison.Ordinal);
        for (var i = 0; i < layers.Count; i++)
        {
            Assert.Equal(File.ReadAllBytes(image.Layers[i].Path), File.ReadAllBytes(Path.Combine(node, "blobs", image.Layers[i].Digest[7..])));
        }

        AssertDiskIsTheImage(Path.Combine(node, "config.v1.json"), layers);
    }

    [Fact]
    public async Task TheReferrerFormIsListedByImageInspectAndALayoutDestinationPullsFromTheLayout()
    {
        var (image, layers) = WriteTwoLayerImage();
        await using var registry = await RegistryServer.StartAsync();
        var source = $"{registry.Host}/cli/ref:v1";
        Run("image", "copy", $"oci:{image.LayoutPath}:{image.Tag}", source);

        var destination = $"{registry.Host}/cli/ref:v1-turbo";
        Run("convert", source, destination, "--referrer");
        var metaDigest = Tool.RunChecked("skopeo", "inspect", "--format", "{{.Digest}}", "--tls-verify=false", $"docker://{destination}").Stdout.Trim();
        using var inspect = JsonDocument.Parse(Run("image", "inspect", source, "--json").Stdout);
        var referrer = Assert.Single(inspect.RootElement.GetProperty("referrers").EnumerateArray());
        Assert.Equal(metaDigest, referrer.GetProperty("digest").GetString());
        Assert.Equal("application/vnd.containerd.overlaybd.turbo.v1+json", referrer.GetProperty("artifactType").GetString());
        Assert.Contains($"{metaDigest}  application/vnd.containerd.overlaybd.turbo.v1+json", Run("image", "inspect", source).Stdout, StringComparison.Ordinal);
        using (var manifest = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout))
        {
            Assert.Equal(inspect.RootElement.GetProperty("digest").GetString(), manifest.RootElement.GetProperty("subject").GetProperty("digest").GetString());
        }

        // Layout to layout, OCI media types: umoci accepts the result, and the node side pulls it from the layout.
        var layout = _temp.File("meta-layout");
        Run("convert", $"oci:{image.LayoutPath}:{image.Tag}", $"oci:{layout}:turbo", "--oci");
        Tool.RunChecked("umoci", "stat", "--image", $"{layout}:turbo");
        using (var manifest = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--raw", $"oci:{layout}:turbo").Stdout))
        {
            Assert.Equal(
                ["application/vnd.oci.image.layer.v1.tar", GzipOciLayer, GzipOciLayer],
                manifest.RootElement.GetProperty("layers").EnumerateArray().Select(d => d.GetProperty("mediaType").GetString()));
            Assert.Equal("application/vnd.oci.image.config.v1+json", manifest.RootElement.GetProperty("config").GetProperty("mediaType").GetString());
        }

        var node = _temp.File("node");
        Run("meta-pull", $"oci:{layout}:turbo", "-o", node);
        AssertDiskIsTheImage(Path.Combine(node, "config.v1.json"), layers);
    }

    [Fact]
    public async Task MissingImagesNonGzipLayersAndBadReferencesFailWithTheirExitCodes()
    {
        await using var registry = await RegistryServer.StartAsync();

        // A missing image: nothing pushed, the error names the reference.
        var missing = CliRunner.Run("convert", $"{registry.Host}/cli/none:v1", ":meta");
        Assert.Equal(ExitCodes.Failure, missing.Code);
        Assert.Contains($"{registry.Host}/cli/none:v1 not found", missing.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(0, Tool.Run("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{registry.Host}/cli/none:meta").ExitCode);
        var missingPull = CliRunner.Run("meta-pull", $"{registry.Host}/cli/none:meta", "-o", _temp.File("none"));
        Assert.Equal(ExitCodes.Failure, missingPull.Code);
        Assert.Contains($"{registry.Host}/cli/none:meta not found", missingPull.Stderr, StringComparison.Ordinal);

        // zstd, bzip2 and xz layers (compressed by the real tools): bad data (exit 2) naming the layer and its
        // compression, and no meta image written.
        var tar = _temp.File("layer.tar");
        File.WriteAllBytes(tar, SyntheticLayers.Back().ToArray());
        foreach (var (tool, extension) in new[] { ("zstd", "zst"), ("bzip2", "bz2"), ("xz", "xz") })
        {
            var compressed = $"{tar}.{extension}";
            using (var output = File.Create(compressed))
            {
                Tool.RunFilterChecked(tool, ["-c", tar], null, output);
            }

            var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(compressed)));
            var layout = OciLayout.Write(_temp.File($"{tool}-layout"),
                [new TestLayerBlob(compressed, digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(tar))),
                    new FileInfo(compressed).Length, new FileInfo(tar).Length, LayerCompression.None)]);
            var refused = CliRunner.Run("convert", $"oci:{layout.LayoutPath}:{layout.Tag}", $"oci:{_temp.File($"{tool}-meta")}:turbo");
            Assert.Equal(ExitCodes.BadData, refused.Code);
            Assert.Contains($"layer {digest} is {tool}-compressed", refused.Stderr, StringComparison.Ordinal);
            Assert.False(Directory.Exists(_temp.File($"{tool}-meta")));
        }

        // meta-pull of an ordinary image (no overlaybd annotations): bad data, nothing but the empty blobs folder written.
        var (image, _) = WriteTwoLayerImage();
        var plainPull = CliRunner.Run("meta-pull", $"oci:{image.LayoutPath}:{image.Tag}", "-o", _temp.File("plain"));
        Assert.Equal(ExitCodes.BadData, plainPull.Code);
        Assert.Contains("containerd.io/snapshot/overlaybd/version", plainPull.Stderr, StringComparison.Ordinal);

        // Bad references, and a DST that would overwrite SRC's own tag, are usage errors caught before any work.
        foreach (var (verb, args, message) in new (string, string[], string)[]
                 {
                     ("convert", ["NOT A REFERENCE", ":meta"], "invalid image reference 'NOT A REFERENCE'"),
                     ("convert", [$"oci:{image.LayoutPath}:{image.Tag}", ":meta"], "DST ':TAG' needs a registry SRC"),
                     ("meta-pull", ["Bad//Ref::x", "-o", _temp.File("bad")], "invalid image reference 'Bad//Ref::x'"),
                     ("convert", [$"{registry.Host}/cli/app:v1", ":v1"], "is SRC itself"),
                     ("convert", [$"{registry.Host}/cli/app", $"docker://{registry.Host}/cli/app:latest"], "is SRC itself"),
                 })
        {
            var bad = CliRunner.Run([verb, .. args]);
            Assert.True(bad.Code == ExitCodes.Usage, $"turbooci {verb} {string.Join(' ', args)} exited {bad.Code}: {bad.Stderr}");
            Assert.StartsWith("turbooci: ", bad.Stderr, StringComparison.Ordinal);
            Assert.Contains(message, bad.Stderr, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(_temp.File("bad")));
    }

    public void Dispose() => _temp.Dispose();

    /// <summary>Two small synthetic layers, gzip, as an OCI layout.</summary>
    private (OciImage Image, IReadOnlyList<TarLayerBuilder> Layers) WriteTwoLayerImage()
    {
        IReadOnlyList<TarLayerBuilder> layers = [SyntheticLayers.Base(), SyntheticLayers.Changes()];
        return (OciLayout.Write(_temp.File($"layout-{Guid.NewGuid():N}"), layers, LayerCompression.Gzip), layers);
    }

    /// <summary><c>turbooci export --config</c>, then e2fsck -fn and the kernel's mount must show the merged layers.</summary>
    private void AssertDiskIsTheImage(string config, IReadOnlyList<TarLayerBuilder> layers)
    {
        var disk = _temp.File($"disk-{Guid.NewGuid():N}.img");
        try
        {
            Run("export", disk, "--config", config);
            var check = E2fsck.Check(disk);
            Assert.True(check.Clean, check.ToString());
            using var mount = Ext4Mount.Mount(disk);
            FileTree.AssertSame(LayerModel.Merge(layers), FileTree.FromDirectory(mount.MountPoint, "lost+found"));
        }
        finally
        {
            File.Delete(disk);
        }
    }

    private static string? Annotation(JsonElement descriptor, string key) =>
        descriptor.GetProperty("annotations").TryGetProperty($"containerd.io/snapshot/overlaybd/{key}", out var value) ? value.GetString() : null;

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.True(result.Code == 0, $"turbooci {string.Join(' ', args)} exited {result.Code}: {result.Stderr}");
        return result;
    }
}
