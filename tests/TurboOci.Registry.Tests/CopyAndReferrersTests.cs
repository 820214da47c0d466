using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>image copy between an OCI layout (built by umoci) and a real registry, cross-checked with skopeo.</summary>
public sealed class CopyAndReferrersTests
{
    [Theory]
    [InlineData(RegistryAuth.Anonymous)]
    [InlineData(RegistryAuth.Token)]
    public async Task CopyToRegistryAndBackGivesIdenticalDigests(RegistryAuth auth)
    {
        using var temp = new TempDir();
        var layout = temp.File("layout");
        UmociImage.BuildTwoLayers(layout, temp.Path);
        var layoutManifest = new OciLayout(layout).Resolve("v1");

        await using var registry = await RegistryServer.StartAsync(auth);
        var log = new TestLog();
        using var client = log.ClientFor(registry);
        var copier = new ImageCopier(log.Add);
        var destination = $"{registry.Host}/copies/app:v1";
        var result = await copier.CopyAsync(ImageStores.Parse($"oci:{layout}:v1", client), ImageStores.Parse(destination, client));
        Assert.Equal(layoutManifest.Digest, result.RootDigest.ToString());
        Assert.Equal(3, result.BlobsCopied); // config + two layers

        // skopeo, an independent client, sees the same manifest digest and layers.
        var inspect = JsonDocument.Parse(Tool.RunChecked("skopeo",
            ["inspect", "--tls-verify=false", .. registry.SkopeoCredentials("--creds"), $"docker://{destination}"]).Stdout).RootElement;
        Assert.Equal(layoutManifest.Digest, inspect.GetProperty("Digest").GetString());
        Assert.Equal(2, inspect.GetProperty("Layers").GetArrayLength());

        // skopeo copies it back to a layout: same manifest bytes.
        Tool.RunChecked("skopeo", ["copy", "--insecure-policy", "--src-tls-verify=false", .. registry.SkopeoCredentials("--src-creds"),
            $"docker://{destination}", $"oci:{temp.File("back")}:v1"]);
        Assert.Equal(layoutManifest.Digest, new OciLayout(temp.File("back")).Resolve("v1").Digest);

        // Our copy back to a layout too; umoci can read it.
        var ours = await copier.CopyAsync(ImageStores.Parse(destination, client), ImageStores.Parse($"oci:{temp.File("ours")}:v1", client));
        Assert.Equal(layoutManifest.Digest, ours.RootDigest.ToString());
        Assert.Equal(
            File.ReadAllBytes(Path.Combine(layout, "blobs", "sha256", layoutManifest.Digest[7..])),
            File.ReadAllBytes(Path.Combine(temp.File("ours"), "blobs", "sha256", layoutManifest.Digest[7..])));
        Tool.RunChecked("umoci", ["stat", "--image", $"{temp.File("ours")}:v1"]);

        // Copying again moves no blob; copying to another repository of the same registry mounts them.
        var again = await copier.CopyAsync(ImageStores.Parse($"oci:{layout}:v1", client), ImageStores.Parse(destination, client));
        Assert.Equal((0, 3), (again.BlobsCopied, again.BlobsSkipped));
        await registry.SettleAccessLogAsync();
        var uploadsBefore = registry.RequestsFor("/v2/mirror/app/blobs/uploads/", "PUT").Count;
        await copier.CopyAsync(ImageStores.Parse(destination, client), ImageStores.Parse($"{registry.Host}/mirror/app:v1", client));
        await registry.SettleAccessLogAsync();
        Assert.Equal(uploadsBefore, registry.RequestsFor("/v2/mirror/app/blobs/uploads/", "PUT").Count);
        Assert.Equal(3, registry.RequestsFor("/v2/mirror/app/blobs/uploads/", "POST").Count(r => r.Status == 201));
        log.AssertNoSecrets(registry);
    }

    [Fact]
    public async Task ReferrersAttachedByUsAreListedThroughTheTagFallback()
    {
        using var temp = new TempDir();
        var layout = temp.File("layout");
        UmociImage.BuildTwoLayers(layout, temp.Path);
        await using var registry = await RegistryServer.StartAsync();
        using var client = new RegistryClient();
        var image = ImageReference.Parse($"{registry.Host}/ref/app:v1");
        await new ImageCopier().CopyAsync(ImageStores.Parse($"oci:{layout}:v1", client), new RegistryImageStore(client, image));
        var subject = (await client.GetManifestAsync(image)).Descriptor;

        Assert.Empty(await client.ListReferrersAsync(image, subject.ParsedDigest));
        var meta = "turbooci meta layer"u8.ToArray();
        var first = await client.AttachReferrerAsync(image, subject, "application/vnd.turbooci.meta.v1", [("application/vnd.turbooci.meta.layer.v1", meta)],
            new Dictionary<string, string> { ["org.example.kind"] = "meta" });
        var second = await client.AttachReferrerAsync(image, subject, "application/vnd.example.sbom", [("application/json", "{\"sbom\":1}"u8.ToArray())]);

        var all = await client.ListReferrersAsync(image, subject.ParsedDigest);
        Assert.Equal([first.Digest, second.Digest], all.Select(d => d.Digest).ToArray());
        Assert.Equal("meta", all[0].Annotations!["org.example.kind"]);
        var metas = await client.ListReferrersAsync(image, subject.ParsedDigest, "application/vnd.turbooci.meta.v1");
        Assert.Equal(first.Digest, Assert.Single(metas).Digest);

        // The fallback tag is a plain OCI index skopeo can read, and the referrer manifest names its subject.
        var tag = RegistryClient.ReferrersTag(subject.ParsedDigest);
        var raw = Tool.RunChecked("skopeo", ["inspect", "--raw", "--tls-verify=false", $"docker://{registry.Host}/ref/app:{tag}"]).Stdout;
        Assert.Equal(2, JsonDocument.Parse(raw).RootElement.GetProperty("manifests").GetArrayLength());
        var referrer = (await client.GetManifestAsync(image.WithDigest(first.ParsedDigest))).AsManifest();
        Assert.Equal(subject.Digest, referrer.Subject!.Digest);
        Assert.Equal(meta, await client.GetBlobBytesAsync(image, referrer.Layers.Single().ParsedDigest));
    }
}
