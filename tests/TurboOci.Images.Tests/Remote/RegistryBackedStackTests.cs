using System.Security.Cryptography;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Images.Indexing;
using TurboOci.Registry;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Registry;
using TurboOci.Testing.Tar;

namespace TurboOci.Images.Tests.Remote;

/// <summary>
/// A stack whose blobs live only in a registry: the indexed synthetic image's layer blobs (base layer,
/// fs-meta layers and the original tar.gz targets) are pushed to docker-registry, and a config names them by
/// repoBlobUrl + digest, keeping only the gzip indexes local (as overlaybd does). Its export must equal the
/// local stack's byte for byte, read lazily (units fetched once, on demand) through the node cache.
/// </summary>
public sealed class RegistryBackedStackTests
{
    private const string Repository = "remote/stack";

    [Fact]
    public async Task AStackWhoseBlobsAreOnlyInTheRegistryExportsLikeTheLocalStackAndReadsLazily()
    {
        using var work = new TempDir();
        var layers = SyntheticLayers.Image(includeWideDirectory: false);
        var blobs = new List<string>();
        for (var i = 0; i < layers.Count; i++)
        {
            var blob = work.File($"layer{i}.tar.gz");
            using (var file = File.Create(blob))
            {
                LayerCompressor.Compress(layers[i].WriteTo, file, i % 2 == 0 ? LayerCompression.MultiMemberGzip : LayerCompression.Pigz);
            }

            blobs.Add(blob);
        }

        var stackDir = work.File("stack");
        StackIndexer.Index(blobs, stackDir, options: new LayerIndexOptions { Span = 1 << 16, Mode = LayerDataMode.Mapped });
        var local = ImageConfig.Load(Path.Combine(stackDir, StackIndexer.ConfigName));
        Assert.True(local.Lowers.Skip(1).All(l => l.TargetFile.Length > 0 && l.GzipIndex.Length > 0), "a mapped stack reads its targets through gzip indexes");

        string localExport;
        long localTargetBytes;
        using (var stack = ImageStack.Open(local))
        {
            localExport = ExportDigest(stack);
            localTargetBytes = stack.TargetBlobs.Sum(t => t.BytesRead);
        }

        // Push every blob the stack reads; the remote config keeps only the (local) gzip indexes and span digests.
        await using var registry = await RegistryServer.StartAsync();
        var pushed = new Dictionary<string, (string Digest, long Size)>();
        foreach (var path in local.Lowers.SelectMany(l => new[] { l.File, l.TargetFile }).Where(p => p.Length > 0).Distinct())
        {
            var bytes = await File.ReadAllBytesAsync(path);
            pushed[path] = (await registry.PushBlobAsync(Repository, bytes), bytes.Length);
        }

        var remote = local with
        {
            RepoBlobUrl = $"http://{registry.Host}/v2/{Repository}/blobs/",
            Lowers = local.Lowers.Select(l => new LowerLayer
            {
                Digest = pushed[l.File].Digest,
                Size = pushed[l.File].Size,
                TargetDigest = l.TargetFile.Length > 0 ? pushed[l.TargetFile].Digest : "",
                GzipIndex = l.GzipIndex,
                SpanDigests = l.SpanDigests,
            }).ToList(),
        };
        var remoteConfigPath = work.File("remote.json");
        await File.WriteAllBytesAsync(remoteConfigPath, remote.ToJson());
        remote = ImageConfig.Load(remoteConfigPath);
        Assert.All(remote.Lowers, l => Assert.Equal(("", ""), (l.File, l.TargetFile)));

        var nodeConfigPath = work.File("overlaybd.json");
        await File.WriteAllBytesAsync(nodeConfigPath, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new
        {
            cacheConfig = new { cacheType = "file", cacheDir = work.File("cache"), cacheSizeGB = 1, refillSize = 262144 },
        }));
        var nodeConfig = OverlaybdConfig.Load(nodeConfigPath);
        var totalBlobBytes = pushed.Values.Sum(p => p.Size);
        int requestsSoFar;
        using (var store = RegistryBlobStore.FromConfig(nodeConfig))
        {
            // Opening reads the layers' headers and indexes, and not one byte of the original (target) blobs.
            var targetDigests = remote.Lowers.Select(l => l.TargetDigest).Where(d => d.Length > 0).ToHashSet();
            using (var stack = ImageStack.Open(remote, store))
            {
                await registry.SettleAccessLogAsync();
                Assert.DoesNotContain(BlobGets(registry), g => targetDigests.Contains(g.Path.Split('/')[^1]));

                // One small read fetches a few units, not the blobs.
                var head = new byte[64 * 1024];
                stack.ReadExactlyAt(0, head);
                await registry.SettleAccessLogAsync();
                Assert.InRange(BlobGets(registry).Sum(g => g.Bytes), 1, totalBlobBytes / 4);

                Assert.Equal(localExport, ExportDigest(stack));
                Assert.Equal(localTargetBytes, stack.TargetBlobs.Sum(t => t.BytesRead)); // the same reads of the same targets
            }

            // Every byte came from the registry once: no unit was fetched twice, nothing beyond the blobs.
            await registry.SettleAccessLogAsync();
            var gets = BlobGets(registry);
            Assert.All(gets, g => Assert.Equal(206, g.Status));
            Assert.InRange(gets.Sum(g => g.Bytes), 1, totalBlobBytes);
            var cached = Assert.IsType<TurboOci.Registry.Cache.DiskRangeCache>(store.Cache).Scan().Sum(e => (long)e.Length);
            Assert.Equal(cached, gets.Sum(g => g.Bytes)); // every byte served landed in the cache once (1 GB: no eviction)

            // Warm: a second device over the same node cache exports the same bytes without a single GET.
            using (var again = ImageStack.Open(remote, store))
            {
                Assert.Equal(localExport, ExportDigest(again));
            }

            await registry.SettleAccessLogAsync();
            Assert.Equal(gets.Count, BlobGets(registry).Count);
            requestsSoFar = gets.Count;
        }

        // The daemon's and export's way in: a node registry built from the overlaybd.json file on first need
        // shares the same cache folder, so the warm stack still makes no request; a local stack needs no store.
        using (var node = new NodeRegistry(nodeConfigPath))
        {
            Assert.Null(node.For(local));
            using (var stack = node.Open(remote))
            {
                Assert.Equal(localExport, ExportDigest(stack));
            }

            await registry.SettleAccessLogAsync();
            Assert.Equal(requestsSoFar, BlobGets(registry).Count);
        }

        // Without a store (or without repoBlobUrl) a registry-only stack is refused with a clear error.
        Assert.Contains("no registry store", Assert.Throws<NotSupportedException>(() => ImageStack.Open(remote)).Message, StringComparison.Ordinal);
    }

    private static List<RegistryRequest> BlobGets(RegistryServer registry) => registry.RequestsFor($"/v2/{Repository}/blobs/", "GET").ToList();

    /// <summary>SHA-256 over every data extent (offset, length, bytes): equal digests mean equal exported disks.</summary>
    private static string ExportDigest(BlockSource stack)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        var extents = 0;
        foreach (var extent in BlockExtents.Coalesce(stack.GetExtents(0, stack.Size)).Where(e => e.Kind == ExtentKind.Data))
        {
            extents++;
            hash.AppendData(BitConverter.GetBytes(extent.Offset));
            hash.AppendData(BitConverter.GetBytes(extent.Length));
            for (var position = extent.Offset; position < extent.End;)
            {
                var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, extent.End - position));
                stack.ReadExactlyAt(position, chunk);
                hash.AppendData(chunk);
                position += chunk.Length;
            }
        }

        Assert.True(extents > 10, $"only {extents} data extents");
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
