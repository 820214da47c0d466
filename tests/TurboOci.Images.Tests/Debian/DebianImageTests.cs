using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using TurboOci.Images.Indexing;
using TurboOci.Testing;
using TurboOci.Testing.Tar;
using Xunit.Abstractions;
using Layout = TurboOci.Registry.OciLayout;

namespace TurboOci.Images.Tests.Debian;

/// <summary>
/// The 4-layer Debian minbase image of tools/corpus (a real distribution plus change layers with whiteouts,
/// opaque directories, type changes, hardlinks, xattrs, non-ASCII names), indexed by <see cref="StackIndexer"/>:
/// for every prefix of the stack, the exported disk passes e2fsck -fn and the kernel-mounted tree equals what
/// umoci (an independent OCI unpacker) unpacks for the image cut to that prefix. The corpus is built when missing.
/// </summary>
public sealed class DebianImageTests(ITestOutputHelper output)
{
    [Fact]
    public void EveryPrefixOfTheIndexedDebianImagePassesE2fsckAndMountsAsUmociUnpacksIt()
    {
        var corpus = Corpus.DebianMinbase();
        var layout = new Layout(corpus.OciLayout);
        var manifestDescriptor = layout.Resolve(corpus.Tag);
        var manifest = layout.ReadManifest(manifestDescriptor).AsManifest();
        var blobs = manifest.Layers.Select(l => layout.BlobPath(l.ParsedDigest)).ToList();
        Assert.Equal(4, blobs.Count);

        using var work = new TempDir();
        var clock = Stopwatch.StartNew();
        var indexed = StackIndexer.Index(blobs, work.File("out"));
        output.WriteLine($"indexed 4 layers ({blobs.Sum(b => new FileInfo(b).Length) / 1e6:0.0} MB of blobs) in {clock.Elapsed.TotalSeconds:0.0} s");
        for (var i = 0; i < indexed.Count; i++)
        {
            Assert.Equal(manifest.Layers[i].Digest, indexed[i].BlobDigest);
        }

        var config = ImageConfig.Load(Path.Combine(work.File("out"), StackIndexer.ConfigName));
        for (var count = 1; count <= blobs.Count; count++)
        {
            clock.Restart();
            var expectedRoot = count == blobs.Count ? corpus.ExpectedRootfs : ExpectedPrefix(corpus, layout, manifestDescriptor, count, work);
            var expected = FileTree.FromDirectory(expectedRoot);
            var prefix = config with { Lowers = config.Lowers.Take(count + 1).ToList() };
            var actual = ExportedDisk.CheckAndRead(prefix, work.File($"disk{count}.img"));
            FileTree.AssertSame(expected, actual);
            output.WriteLine($"prefix of {count} layers: {actual.Entries.Count} entries, e2fsck clean, same tree as umoci ({clock.Elapsed.TotalSeconds:0.0} s)");
        }
    }

    /// <summary>
    /// umoci's view of the first <paramref name="count"/> layers, cached beside the corpus (keyed by the image's
    /// manifest digest, so a rebuilt corpus gets new ones): umoci unpack takes longer than everything else here.
    /// </summary>
    private static string ExpectedPrefix(DebianCorpus corpus, Layout layout, Registry.Descriptor manifestDescriptor, int count, TempDir work)
    {
        var cached = Path.Combine(Path.GetDirectoryName(corpus.OciLayout)!, $"expected-prefix-{count}-{manifestDescriptor.ParsedDigest.Hex[..12]}");
        if (!Directory.Exists(cached))
        {
            // Other test processes may build the same prefix at the same time: each unpacks into its own folder, the first rename wins.
            var building = $"{cached}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
            try
            {
                UmociUnpackPrefix(corpus, layout, manifestDescriptor, count, work, building);
                Directory.Move(building, cached);
            }
            catch (IOException) when (Directory.Exists(cached))
            {
            }
            finally
            {
                if (Directory.Exists(building))
                {
                    Directory.Delete(building, recursive: true);
                }
            }
        }

        return Path.Combine(cached, "rootfs");
    }

    /// <summary>
    /// The image cut to its first <paramref name="count"/> layers (manifest layers, config diff_ids and history),
    /// in a layout whose blobs link to the corpus's, unpacked by umoci into the bundle folder <paramref name="bundle"/>.
    /// </summary>
    private static void UmociUnpackPrefix(DebianCorpus corpus, Layout source, Registry.Descriptor manifestDescriptor, int count, TempDir work, string bundle)
    {
        var prefixLayout = work.File($"layout-{count}");
        var blobs = Path.Combine(prefixLayout, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        File.WriteAllText(Path.Combine(prefixLayout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");

        var manifest = JsonNode.Parse(File.ReadAllBytes(source.BlobPath(manifestDescriptor.ParsedDigest)))!.AsObject();
        var layers = manifest["layers"]!.AsArray().Take(count).Select(l => l!.DeepClone()).ToArray();
        foreach (var layer in layers)
        {
            var hex = layer!["digest"]!.GetValue<string>()["sha256:".Length..];
            File.CreateSymbolicLink(Path.Combine(blobs, hex), Path.Combine(corpus.OciLayout, "blobs", "sha256", hex));
        }

        var configDigest = manifest["config"]!["digest"]!.GetValue<string>();
        var config = JsonNode.Parse(File.ReadAllBytes(Path.Combine(corpus.OciLayout, "blobs", "sha256", configDigest["sha256:".Length..])))!.AsObject();
        var diffIds = config["rootfs"]!["diff_ids"]!.AsArray().Take(count).Select(d => d!.DeepClone()).ToArray();
        config["rootfs"]!["diff_ids"] = new JsonArray(diffIds);
        if (config["history"] is JsonArray history)
        {
            config["history"] = new JsonArray(history.Take(count).Select(h => h!.DeepClone()).ToArray());
        }

        var configDescriptor = WriteBlob(blobs, JsonSerializer.SerializeToUtf8Bytes(config));
        manifest["config"]!["digest"] = configDescriptor.Digest;
        manifest["config"]!["size"] = configDescriptor.Size;
        manifest["layers"] = new JsonArray(layers);
        var manifestBlob = WriteBlob(blobs, JsonSerializer.SerializeToUtf8Bytes(manifest));
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["digest"] = manifestBlob.Digest,
                ["size"] = manifestBlob.Size,
                ["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = "prefix" },
            }),
        };
        File.WriteAllBytes(Path.Combine(prefixLayout, "index.json"), JsonSerializer.SerializeToUtf8Bytes(index));

        Tool.RunChecked("umoci", ["unpack", "--image", $"{prefixLayout}:prefix", bundle], timeout: TimeSpan.FromMinutes(5));
        Directory.Delete(prefixLayout, recursive: true);
    }

    private static (string Digest, long Size) WriteBlob(string blobs, byte[] content)
    {
        var hex = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
        File.WriteAllBytes(Path.Combine(blobs, hex), content);
        return ("sha256:" + hex, content.Length);
    }
}
