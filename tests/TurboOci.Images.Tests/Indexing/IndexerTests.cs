using System.Security.Cryptography;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Formats.Lsmt;
using TurboOci.Images.Indexing;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Tar;
using LayerBlob = TurboOci.Formats.Lsmt.LayerBlob;
using Xunit.Abstractions;

namespace TurboOci.Images.Tests.Indexing;

/// <summary>
/// The indexer end to end, judged by real tools: a stack indexed from layer blobs on overlaybd's stock base,
/// opened from its config.v1.json and exported to a raw disk, must pass e2fsck and, mounted by the kernel,
/// show exactly what GNU tar (one layer) or the OCI changeset model checked against umoci (a stack) says.
/// The gzip index must be overlaybd's, byte for byte.
/// </summary>
public sealed class IndexerTests(ITestOutputHelper output)
{
    private const long OverlaybdFsMetaSize = 15_688;

    private static string ReferenceLayer => RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz");

    [Fact]
    public void TheReferenceLayerIndexesToOverlaybdsGzipIndexAndMountsAsGnuTarExtractsIt()
    {
        using var work = new TempDir();
        var dir = work.File("out");
        var layers = StackIndexer.Index([ReferenceLayer], dir, options: new LayerIndexOptions { SparseWindows = false });

        var layer = Assert.Single(layers);
        Assert.Equal("sha256:ea6f060cc7e87b5d79a13118048099e7e210434fdd785b4ceb4cf0ad9ed610b3", layer.BlobDigest);
        Assert.Equal(Path.Combine(dir, "0-ea6f060cc7e8"), layer.Folder);
        Assert.Equal(File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta")), File.ReadAllBytes(layer.GzipIndex));
        Assert.Empty(File.ReadAllBytes(Path.Combine(layer.Folder, LayerIndexer.TurboMarkerName)));
        Assert.Equal(["0-ea6f060cc7e8", "base", StackIndexer.ConfigName], Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order());
        Assert.Equal([LayerIndexer.TurboMarkerName, LayerIndexer.FsMetaName, LayerIndexer.GzipIndexName, LayerIndexer.GzipSpansName],
            Directory.EnumerateFiles(layer.Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Committed the way overlaybd-commit -z --turboOCI does: an LZ4 ZFile of 4 KiB blocks around a warp layer.
        var fsMetaSize = new FileInfo(layer.LayerFile).Length;
        output.WriteLine($"ext4.fs.meta: ours {fsMetaSize} bytes, overlaybd's {OverlaybdFsMetaSize} bytes");
        using (var ours = LayerBlob.Open(FileBlockSource.OpenRead(layer.LayerFile), out var shape, new MemoryBlockSource([]), ownsBlob: true))
        using (var theirs = LayerBlob.Open(FileBlockSource.OpenRead(RepoPaths.Fixture("overlaybd-reference", "turbooci", LayerIndexer.FsMetaName)),
            out var referenceShape, new MemoryBlockSource([]), ownsBlob: true))
        {
            Assert.Equal(referenceShape, shape);
            Assert.Equal(theirs.Size, ours.Size);
            Assert.Equal(theirs.Header.Flags, ours.Header.Flags);
            Assert.Contains(ours.Index.Entries.ToArray(), e => e.Tag == 1);
        }

        // The config is relative to its folder: move the whole folder and it still opens.
        var moved = work.File("moved");
        Directory.Move(dir, moved);
        var config = ImageConfig.Load(Path.Combine(moved, StackIndexer.ConfigName));
        Assert.Equal(2, config.Lowers.Count);
        Assert.Equal(ReferenceLayer, config.Lowers[1].TargetFile);

        var expected = work.File("expected");
        Directory.CreateDirectory(expected);
        Tool.RunChecked("tar", "-xzf", ReferenceLayer, "-C", expected, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*");
        FileTree.AssertSame(FileTree.FromDirectory(expected), ExportedDisk.CheckAndRead(config, work.File("disk.img")));

        // overlaybd's own fs-meta and gzip index for the same blob, opened through the same kind of config, agree.
        var overlaybd = config with
        {
            Lowers =
            [
                config.Lowers[0],
                new LowerLayer
                {
                    File = RepoPaths.Fixture("overlaybd-reference", "turbooci", LayerIndexer.FsMetaName),
                    TargetFile = ReferenceLayer,
                    GzipIndex = RepoPaths.Fixture("overlaybd-reference", "turbooci", LayerIndexer.GzipIndexName),
                },
            ],
        };
        FileTree.AssertSame(FileTree.FromDirectory(expected), ExportedDisk.CheckAndRead(overlaybd, work.File("overlaybd.img")));
    }

    [Fact]
    public void CopiedModeMakesANativeLayerThatMountsAsGnuTarExtractsIt()
    {
        using var work = new TempDir();
        var dir = work.File("out");
        var layer = Assert.Single(StackIndexer.Index([ReferenceLayer], dir, options: new LayerIndexOptions { Mode = LayerDataMode.Copied }));
        Assert.Equal([LayerIndexer.NativeLayerName], Directory.EnumerateFiles(layer.Folder).Select(Path.GetFileName));
        var config = ImageConfig.Load(Path.Combine(dir, StackIndexer.ConfigName));
        Assert.Equal("", config.Lowers[1].TargetFile);

        var expected = work.File("expected");
        Directory.CreateDirectory(expected);
        Tool.RunChecked("tar", "-xzf", ReferenceLayer, "-C", expected, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*");
        FileTree.AssertSame(FileTree.FromDirectory(expected), ExportedDisk.CheckAndRead(config, work.File("disk.img")));
    }

    [Theory]
    [InlineData(LayerDataMode.Mapped)]
    [InlineData(LayerDataMode.Copied)]
    public void EveryPrefixOfAnIndexedSyntheticStackMountsAsTheChangesetModelSays(LayerDataMode mode)
    {
        using var work = new TempDir();
        var layers = SyntheticLayers.Image(includeWideDirectory: false);

        // Several gzip members, pigz's flushed blocks, and a plain tar: every blob shape the indexer reads.
        LayerCompression[] shapes = [LayerCompression.MultiMemberGzip, LayerCompression.Pigz, LayerCompression.None];
        var blobs = new List<string>();
        for (var i = 0; i < layers.Count; i++)
        {
            var blob = work.File($"layer{i}.blob");
            using (var file = File.Create(blob))
            {
                LayerCompressor.Compress(layers[i].WriteTo, file, shapes[i]);
            }

            blobs.Add(blob);
        }

        var dir = work.File("out");
        var indexed = StackIndexer.Index(blobs, dir, options: new LayerIndexOptions { Span = 1 << 16, Mode = mode });
        Assert.Equal(layers.Count, indexed.Count);
        for (var i = 0; i < layers.Count; i++)
        {
            Assert.Equal(layers[i].Entries.Count, indexed[i].Applied.Entries);
            Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(blobs[i]))), indexed[i].BlobDigest);
            Assert.Equal(mode == LayerDataMode.Mapped && shapes[i] != LayerCompression.None, File.Exists(Path.Combine(indexed[i].Folder, LayerIndexer.GzipIndexName)));
        }

        var config = ImageConfig.Load(Path.Combine(dir, StackIndexer.ConfigName));
        for (var count = 1; count <= layers.Count; count++)
        {
            var prefix = config with { Lowers = config.Lowers.Take(count + 1).ToList() };
            FileTree.AssertSame(LayerModel.Merge(layers.Take(count)), ExportedDisk.CheckAndRead(prefix, work.File($"disk{count}.img")));
        }
    }

    [Fact]
    public void IndexingTheSameLayerTwiceGivesTheSameFsMetaUnlessTheTimestampDiffers()
    {
        // Inode change times come from the options, not the wall clock: meta image digests are reproducible.
        using var work = new TempDir();
        byte[] FsMeta(string name, LayerIndexOptions? options = null) =>
            File.ReadAllBytes(StackIndexer.Index([ReferenceLayer], work.File(name), options: options).Single().LayerFile);

        var first = FsMeta("first");
        Thread.Sleep(1100); // a wall-clock stamp would now differ in whole seconds
        Assert.Equal(first, FsMeta("second"));
        Assert.NotEqual(first, FsMeta("later", new LayerIndexOptions { Timestamp = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) }));
    }

    [Fact]
    public void OpeningAStackWritesTheResultFileAsOverlaybdDoes()
    {
        using var work = new TempDir();
        var dir = work.File("out");
        StackIndexer.Index([ReferenceLayer], dir);
        var config = ImageConfig.Load(Path.Combine(dir, StackIndexer.ConfigName)) with { ResultFile = work.File("result") };
        using (ImageStack.Open(config))
        {
            Assert.Equal("success", File.ReadAllText(config.ResultFile));
        }

        var broken = config with { Lowers = [config.Lowers[0], config.Lowers[1] with { GzipIndex = work.File("missing.meta") }] };
        Assert.ThrowsAny<IOException>(() => ImageStack.Open(broken));
        Assert.StartsWith("failed:", File.ReadAllText(config.ResultFile));
        Assert.Contains("missing.meta", File.ReadAllText(config.ResultFile));
    }

    [Fact]
    public void ATruncatedGzipLayerIsRefusedAndLeavesNoLayerFolderOrConfig()
    {
        using var work = new TempDir();
        var blob = File.ReadAllBytes(ReferenceLayer);
        var truncated = work.File("truncated.tar.gz");
        File.WriteAllBytes(truncated, blob[..(blob.Length / 2)]);
        var dir = work.File("out");
        // The inflater runs on the pipeline's producer thread: its error must reach the caller, not vanish.
        var error = Assert.Throws<TurboOciFormatException>(() => StackIndexer.Index([truncated], dir));
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        Assert.Equal([StackIndexer.BaseFolder], Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void AWritableUpperInTheConfigIsStackedOnTheLowersAndKeepsItsWrites()
    {
        using var work = new TempDir();
        var dir = work.File("out");
        StackIndexer.Index([ReferenceLayer], dir);
        var lowersOnly = ImageConfig.Load(Path.Combine(dir, StackIndexer.ConfigName));
        var config = lowersOnly with { Upper = new UpperLayer { Data = work.File("upper.data"), Index = work.File("upper.index") } };
        using (var lowers = ImageStack.OpenLowers(config))
        using (WritableLayer.Create(config.Upper.Data, config.Upper.Index, 0, lower: lowers))
        {
        }

        var superblock = new byte[4096];
        var written = Enumerable.Range(0, 4096).Select(i => (byte)(i * 31)).ToArray();
        using (var stack = ImageStack.Open(config))
        {
            Assert.True(stack.CanWrite);
            stack.ReadExactlyAt(0, superblock);
            stack.WriteAt(1 << 30, written);
            stack.Flush();
        }

        using (var lowers = ImageStack.Open(lowersOnly))
        using (var stack = ImageStack.Open(config))
        {
            Assert.False(lowers.CanWrite);
            var buffer = new byte[4096];
            stack.ReadExactlyAt(1 << 30, buffer);
            Assert.Equal(written, buffer);
            lowers.ReadExactlyAt(1 << 30, buffer);
            Assert.NotEqual(written, buffer);
            lowers.ReadExactlyAt(0, buffer);
            Assert.Equal(superblock, buffer);
        }
    }
}
