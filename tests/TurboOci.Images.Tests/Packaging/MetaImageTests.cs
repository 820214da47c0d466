using System.Security.Cryptography;
using System.Text.Json;
using TurboOci.Images.Indexing;
using TurboOci.Images.Packaging;
using TurboOci.Registry;
using TurboOci.Testing;
using TurboOci.Testing.Registry;
using TurboOci.Testing.Tar;
using TestLayout = TurboOci.Testing.Tar.OciLayout;
using TestLayerBlob = TurboOci.Testing.Tar.LayerBlob;

namespace TurboOci.Images.Tests.Packaging;

/// <summary>
/// The meta image end to end against docker's distribution registry: converted, read back by skopeo (an
/// independent client) with the exact annotations of accelerated-container-image, the referrer form listed, and
/// the node's side (pull, unpack, config.v1.json) judged by e2fsck and the kernel against the OCI changeset model.
/// </summary>
public sealed class MetaImageTests
{
    // gzip from pigz, a plain tar, several gzip members: every target shape the node must handle.
    private static readonly LayerCompression[] s_shapes = [LayerCompression.Pigz, LayerCompression.None, LayerCompression.MultiMemberGzip];

    [Fact]
    public async Task ALayoutImageConvertsToTheMetaImageAciWritesAndTheNodeSideMountsIt()
    {
        using var temp = new TempDir();
        var (image, layers) = WriteSyntheticImage(temp);
        await using var registry = await RegistryServer.StartAsync();
        using var client = new RegistryClient();
        var destination = $"{registry.Host}/apps/synthetic:turbo";
        var result = await new MetaImageConverter(client).ConvertAsync(
            ImageStores.Parse($"oci:{image.LayoutPath}:{image.Tag}", client), ImageStores.Parse(destination, client));
        Assert.Equal(image.ManifestDigest, result.Source.Digest);

        // skopeo sees the manifest we pushed, byte for byte, in Docker schema 2 as the convertor writes by default.
        var raw = Tool.RunChecked("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout;
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(raw))), result.Manifest.Digest.ToString());
        var manifest = JsonDocument.Parse(raw).RootElement;
        Assert.Equal("application/vnd.docker.distribution.manifest.v2+json", manifest.GetProperty("mediaType").GetString());
        Assert.Equal("application/vnd.docker.container.image.v1+json", manifest.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.False(manifest.TryGetProperty("subject", out _));
        var descriptors = manifest.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(layers.Count + 1, descriptors.Count);

        // The raw base layer first, as `convertor --mkfs=false` lists it.
        Assert.Equal("application/vnd.docker.image.rootfs.diff.tar", descriptors[0].GetProperty("mediaType").GetString());
        Assert.Equal("sha256:c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9", descriptors[0].GetProperty("digest").GetString());
        Assert.Equal(4737695, descriptors[0].GetProperty("size").GetInt64());
        Assert.Equal(
            [
                ("containerd.io/snapshot/overlaybd/blob-digest", "sha256:c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9"),
                ("containerd.io/snapshot/overlaybd/blob-size", "4737695"),
                ("containerd.io/snapshot/overlaybd/version", "0.1.0"),
            ],
            Annotations(descriptors[0]));

        // Then one meta layer per original layer, with exactly the five annotations of the spec (§2.2), sorted as Go writes maps.
        var copied = temp.File("copied");
        Tool.RunChecked("skopeo", "copy", "--insecure-policy", "--src-tls-verify=false", $"docker://{destination}", $"oci:{copied}:turbo");
        for (var i = 0; i < layers.Count; i++)
        {
            var meta = descriptors[i + 1];
            var digest = meta.GetProperty("digest").GetString()!;
            var size = meta.GetProperty("size").GetInt64();
            var gzip = s_shapes[i] != LayerCompression.None;
            Assert.Equal("application/vnd.docker.image.rootfs.diff.tar.gzip", meta.GetProperty("mediaType").GetString());
            Assert.Equal(
                [
                    ("containerd.io/snapshot/overlaybd/blob-digest", digest),
                    ("containerd.io/snapshot/overlaybd/blob-size", size.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    ("containerd.io/snapshot/overlaybd/turbo-oci/target-digest", image.Layers[i].Digest),
                    ("containerd.io/snapshot/overlaybd/turbo-oci/target-media-type", gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar"),
                    ("containerd.io/snapshot/overlaybd/version", "0.1.0-turbo.ociv1"),
                ],
                Annotations(meta));

            // The blob skopeo copied is a tar.gz GNU tar reads, holding the three files (two for a plain tar layer).
            var blobPath = TestLayout.BlobPath(copied, digest);
            string[] expected = gzip ? ["ext4.fs.meta", ".turbo.ociv1", "gzip.meta"] : ["ext4.fs.meta", ".turbo.ociv1"];
            Assert.Equal(expected, Tool.RunChecked("tar", "-tzf", blobPath).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }

        // The config keeps the source's fields; diff_ids are the base digest, then the sha256 of each meta tar as gzip -d gives it.
        var config = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--config", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout).RootElement;
        var sourceConfig = JsonDocument.Parse(File.ReadAllBytes(image.BlobPath(image.ConfigDigest))).RootElement;
        Assert.Equal(sourceConfig.GetProperty("architecture").GetString(), config.GetProperty("architecture").GetString());
        var diffIds = config.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()).ToList();
        var metaTarDigests = descriptors.Skip(1).Select(d => "sha256:" + Sha256Of("gzip", "-dc", TestLayout.BlobPath(copied, d.GetProperty("digest").GetString()!)));
        Assert.Equal(["sha256:c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9", .. metaTarDigests], diffIds);

        // The original blobs came from a layout, so the converter put them into the meta image's repository: the node reads them there.
        var repository = ImageReference.Parse(destination);
        foreach (var layer in image.Layers)
        {
            Assert.Equal(layer.Size, await client.HeadBlobAsync(repository, Digest.Parse(layer.Digest)));
        }

        // The node's side: pull the meta tag, unpack each meta layer, write config.v1.json; the disk is the image.
        var node = temp.File("node");
        var stack = await new MetaImagePuller(client).PullAsync(ImageStores.Parse(destination, client), node);
        Assert.Equal(layers.Count + 1, stack.Lowers.Count);
        for (var i = 0; i < layers.Count; i++)
        {
            var lower = stack.Lowers[i + 1];
            Assert.Equal(image.Layers[i].Digest, lower.TargetDigest);
            Assert.Equal(File.ReadAllBytes(image.Layers[i].Path), File.ReadAllBytes(lower.TargetFile));
            Assert.Equal(s_shapes[i] != LayerCompression.None, lower.GzipIndex.Length > 0);
        }

        var fromFile = ImageConfig.Load(Path.Combine(node, StackIndexer.ConfigName));
        Assert.Equal(stack.Lowers, fromFile.Lowers);
        FileTree.AssertSame(LayerModel.Merge(layers), ExportedDisk.CheckAndRead(fromFile, temp.File("disk.img")));
    }

    [Fact]
    public async Task TheReferrerFormNamesTheSourceAsSubjectIsListedByOurReferrersCallAndStaysTagged()
    {
        using var temp = new TempDir();
        var (image, _) = WriteSyntheticImage(temp);
        await using var registry = await RegistryServer.StartAsync();
        registry.PushOciLayout(image.LayoutPath, image.Tag, "apps/synthetic", "v1");
        using var client = new RegistryClient();
        var source = ImageReference.Parse($"{registry.Host}/apps/synthetic:v1");
        var sourceManifest = await client.GetManifestAsync(source);

        var destination = $"{registry.Host}/apps/synthetic:v1-turbo";
        var result = await new MetaImageConverter(client).ConvertAsync(ImageStores.Parse(source.ToString(), client), ImageStores.Parse(destination, client),
            new MetaImageOptions { Referrer = true });

        var manifest = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{destination}").Stdout).RootElement;
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", manifest.GetProperty("mediaType").GetString());
        Assert.Equal("application/vnd.containerd.overlaybd.turbo.v1+json", manifest.GetProperty("artifactType").GetString());
        Assert.Equal("application/vnd.oci.image.config.v1+json", manifest.GetProperty("config").GetProperty("mediaType").GetString());
        var subject = manifest.GetProperty("subject");
        Assert.Equal(sourceManifest.Digest.ToString(), subject.GetProperty("digest").GetString());
        Assert.Equal(sourceManifest.Bytes.Length, subject.GetProperty("size").GetInt64());
        Assert.Equal(sourceManifest.MediaType, subject.GetProperty("mediaType").GetString());
        var layerTypes = manifest.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("mediaType").GetString()).ToList();
        Assert.Equal(["application/vnd.oci.image.layer.v1.tar", .. Enumerable.Repeat("application/vnd.oci.image.layer.v1.tar+gzip", s_shapes.Length)], layerTypes);

        var referrers = await client.ListReferrersAsync(source, sourceManifest.Digest, TurboOciLabels.ArtifactType);
        var listed = Assert.Single(referrers);
        Assert.Equal(result.Manifest.Digest.ToString(), listed.Digest);

        // Still tagged: users pull the meta image by its tag, the node never asks the referrers API.
        Assert.Equal(result.Manifest.Digest, (await client.GetManifestAsync(ImageReference.Parse(destination))).Digest);
    }

    [Fact]
    public async Task ALayoutToLayoutConversionCarriesTheOriginalBlobsAndTheNodeSidePullsFromTheLayout()
    {
        using var temp = new TempDir();
        var (image, layers) = WriteSyntheticImage(temp);
        using var client = new RegistryClient();
        var destination = temp.File("meta-layout");
        var result = await new MetaImageConverter(client).ConvertAsync(
            ImageStores.Parse($"oci:{image.LayoutPath}:{image.Tag}", client), ImageStores.Parse($"oci:{destination}:turbo", client), new MetaImageOptions { Oci = true });

        // An OCI layout umoci accepts, tagged, holding the meta layers and the originals the node will read.
        Tool.RunChecked("umoci", "stat", "--image", $"{destination}:turbo");
        Assert.Equal(result.Manifest.Digest.ToString(), new Registry.OciLayout(destination).Resolve("turbo").Digest);
        foreach (var layer in image.Layers)
        {
            Assert.Equal(File.ReadAllBytes(layer.Path), File.ReadAllBytes(TestLayout.BlobPath(destination, layer.Digest)));
        }

        var node = temp.File("node");
        var stack = await new MetaImagePuller().PullAsync(ImageStores.Parse($"oci:{destination}:turbo", client), node);
        FileTree.AssertSame(LayerModel.Merge(layers), ExportedDisk.CheckAndRead(stack, temp.File("disk.img")));
    }

    [Fact]
    public async Task AZstdLayerIsRefusedBeforeAnythingIsPushed()
    {
        using var temp = new TempDir();
        var tar = temp.File("layer.tar");
        using (var file = File.Create(tar))
        {
            SyntheticLayers.Base().WriteTo(file);
        }

        Tool.RunChecked("zstd", "-q", "-f", tar, "-o", tar + ".zst");
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(tar + ".zst")));
        var blob = new TestLayerBlob(tar + ".zst", digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(tar))),
            new FileInfo(tar + ".zst").Length, new FileInfo(tar).Length, LayerCompression.None);
        var image = TestLayout.Write(temp.File("layout"), [blob]);

        using var client = new RegistryClient();
        var destination = temp.File("meta-layout");
        var error = await Assert.ThrowsAsync<Storage.TurboOciFormatException>(() => new MetaImageConverter(client).ConvertAsync(
            ImageStores.Parse($"oci:{image.LayoutPath}:{image.Tag}", client), ImageStores.Parse($"oci:{destination}:turbo", client)));
        Assert.Contains($"layer {digest} is zstd-compressed", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(destination));
    }

    private static IReadOnlyList<(string, string)> Annotations(JsonElement descriptor) =>
        descriptor.GetProperty("annotations").EnumerateObject().Select(p => (p.Name, p.Value.GetString()!)).ToList();

    private static string Sha256Of(string program, params string[] args)
    {
        using var output = new MemoryStream();
        Tool.RunFilterChecked(program, args, null, output);
        return Convert.ToHexStringLower(SHA256.HashData(output.ToArray()));
    }

    private static (OciImage Image, IReadOnlyList<TarLayerBuilder> Layers) WriteSyntheticImage(TempDir temp)
    {
        var layers = SyntheticLayers.Image(includeWideDirectory: false);
        Assert.Equal(s_shapes.Length, layers.Count);
        var blobs = layers.Select((layer, i) => TestLayerBlob.Write(layer, temp.File($"layer{i}"), s_shapes[i])).ToList();
        return (TestLayout.Write(temp.File("layout"), blobs), layers);
    }
}
