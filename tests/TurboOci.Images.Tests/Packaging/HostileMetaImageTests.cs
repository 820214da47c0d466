using System.Formats.Tar;
using System.IO.Compression;
using TurboOci.Images.Indexing;
using TurboOci.Images.Packaging;
using TurboOci.Registry;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Registry;
using TurboOci.Testing.Tar;
using TestLayerBlob = TurboOci.Testing.Tar.LayerBlob;
using TestLayout = TurboOci.Testing.Tar.OciLayout;

namespace TurboOci.Images.Tests.Packaging;

/// <summary>
/// A meta image is untrusted input on the node: its manifest, its meta layer tars and the files inside them may
/// lie. Each hostile variant of a good converted image is refused by meta-pull with a TurboOciFormatException
/// naming the format, the field and the offset, no config.v1.json is written, and nothing lands outside DIR.
/// </summary>
public sealed class HostileMetaImageTests(HostileMetaImageTests.ConvertedImage converted) : IClassFixture<HostileMetaImageTests.ConvertedImage>
{
    private const string Tag = "turbo";
    private const string MetaFormat = MetaLayerBlob.FormatName;
    private const string BlobDigestKey = "containerd.io/snapshot/overlaybd/blob-digest";
    private const string BlobSizeKey = "containerd.io/snapshot/overlaybd/blob-size";
    private const string TargetDigestKey = "containerd.io/snapshot/overlaybd/turbo-oci/target-digest";
    private const string TargetMediaTypeKey = "containerd.io/snapshot/overlaybd/turbo-oci/target-media-type";

    /// <summary>A two-layer image (a gzip layer, then a plain tar layer) converted once to an OCI layout meta image.</summary>
    public sealed class ConvertedImage : IDisposable
    {
        private readonly TempDir _temp = new("hostile-meta-");

        public ConvertedImage()
        {
            var layers = new[] { SyntheticLayers.Base(), SyntheticLayers.Changes() };
            var blobs = new[]
            {
                TestLayerBlob.Write(layers[0], _temp.File("layer0"), LayerCompression.Gzip),
                TestLayerBlob.Write(layers[1], _temp.File("layer1"), LayerCompression.None),
            };
            var image = TestLayout.Write(_temp.File("source"), blobs);
            Layout = _temp.File("meta");
            using var client = new RegistryClient();
            new MetaImageConverter(client).ConvertAsync(ImageStores.Parse($"oci:{image.LayoutPath}:{image.Tag}", client),
                ImageStores.Parse($"oci:{Layout}:{Tag}", client), new MetaImageOptions { Oci = true }).GetAwaiter().GetResult();
            PlainTarSize = blobs[1].Size;
        }

        /// <summary>The good meta image.</summary>
        public string Layout { get; }

        /// <summary>Size of the second (uncompressed) original layer.</summary>
        public long PlainTarSize { get; }

        public void Dispose() => _temp.Dispose();
    }

    [Fact]
    public async Task TheUnchangedImagePullsSoEveryRefusalBelowIsCausedByItsOneChange()
    {
        using var work = new TempDir("hostile-");
        var layout = CopyLayout(work);
        using var client = new RegistryClient();
        var config = await new MetaImagePuller().PullAsync(ImageStores.Parse($"oci:{layout.Directory}:{Tag}", client), work.File("dir"));
        Assert.Equal(3, config.Lowers.Count);
        Assert.True(File.Exists(Path.Combine(work.File("dir"), StackIndexer.ConfigName)));
    }

    [Fact]
    public Task ABlobDigestAnnotationThatNamesAnotherBlobIsRefused() => AssertRefused(
        layout => EditLayer(layout, 1, d => d with { Annotations = With(d.Annotations, BlobDigestKey, ReadManifest(layout).Layers[2].Digest) }),
        MetaFormat, $"layers[1].annotations[{BlobDigestKey}]", 0, "but the descriptor is");

    [Fact]
    public Task ABlobSizeAnnotationThatDisagreesIsRefused() => AssertRefused(
        layout => EditLayer(layout, 2, d => d with { Annotations = With(d.Annotations, BlobSizeKey, (d.Size + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) }),
        MetaFormat, $"layers[2].annotations[{BlobSizeKey}]", 0, "bytes");

    [Fact]
    public Task ADescriptorSizeThatLiesIsRefusedAfterTheDigestMatched() => AssertRefused(
        layout => EditLayer(layout, 1, d => d with
        {
            Size = d.Size + 512,
            Annotations = With(d.Annotations, BlobSizeKey, (d.Size + 512).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        }),
        "OCI", "descriptor.size", 0, "its descriptor says");

    [Fact]
    public async Task ADescriptorSizeThatLiesIsRefusedWhenPulledFromARegistryToo()
    {
        // docker's distribution stores the lying manifest (it checks that blobs exist, not their sizes); the
        // puller downloads the digest-checked blob and then compares its size with the descriptor.
        using var work = new TempDir("hostile-");
        var layout = CopyLayout(work);
        await using var registry = await RegistryServer.StartAsync();
        using var client = new RegistryClient();
        var reference = ImageReference.Parse($"{registry.Host}/hostile/meta:{Tag}");
        await new ImageCopier().CopyAsync(ImageStores.Parse($"oci:{layout.Directory}:{Tag}", client), ImageStores.Parse(reference.ToString(), client));
        foreach (var target in ReadManifest(layout).Layers.Skip(1).Select(l => l.Annotations![TargetDigestKey]))
        {
            await registry.PushBlobAsync("hostile/meta", File.ReadAllBytes(layout.BlobPath(Digest.Parse(target))));
        }

        EditLayer(layout, 2, d => d with { Size = d.Size - 1, Annotations = With(d.Annotations, BlobSizeKey, (d.Size - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) });
        await client.PutManifestAsync(reference, layout.ReadManifest(layout.Resolve(Tag)));

        var dir = work.File("dir");
        var error = await Assert.ThrowsAsync<TurboOciFormatException>(() => new MetaImagePuller(client).PullAsync(ImageStores.Parse(reference.ToString(), client), dir));
        Assert.Equal(("OCI", "descriptor.size", 0L), (error.Format, error.Field, error.Offset));
        Assert.Contains("its descriptor says", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, StackIndexer.ConfigName)));
    }

    [Fact]
    public Task AHugeDeclaredMetaLayerIsRefusedBeforeItIsDownloaded() => AssertRefused(
        layout => EditLayer(layout, 1, d => d with { Size = 1L << 50, Annotations = With(d.Annotations, BlobSizeKey, (1L << 50).ToString(System.Globalization.CultureInfo.InvariantCulture)) }),
        MetaFormat, "layers[1].size", 0, "declares 1125899906842624 bytes", dir => Assert.Single(Directory.GetFiles(Path.Combine(dir, "blobs"))));

    [Fact]
    public Task AMalformedTargetDigestIsRefused() => AssertRefused(
        layout => EditLayer(layout, 1, d => d with { Annotations = With(d.Annotations, TargetDigestKey, "sha256:../../../etc/passwd") }),
        "OCI", "descriptor.digest", 0, "malformed digest");

    [Fact]
    public Task AMetaLayerWithoutATargetDigestIsRefusedRatherThanReadAsANativeLayer() => AssertRefused(
        layout => EditLayer(layout, 1, d => d with { Annotations = d.Annotations!.Where(a => a.Key != TargetDigestKey).ToDictionary() }),
        MetaFormat, "layers[1].annotations", 0, "without a containerd.io/snapshot/overlaybd/turbo-oci/target-digest annotation");

    [Fact]
    public Task AGzipTargetWhoseMediaTypeSaysPlainTarIsRefused() => AssertRefused(
        layout =>
        {
            // The gzip layer's meta blob without its gzip.meta, and the target media type to match: only the target's bytes tell.
            EditLayer(layout, 1, d => d with { Annotations = With(d.Annotations, TargetMediaTypeKey, "application/vnd.oci.image.layer.v1.tar") });
            RepackMetaBlob(layout, 1, files => files.Remove("gzip.meta"));
        },
        "OCI layer", "media type", 0, "the target blob is gzip");

    public static TheoryData<string, string, string> HostileTars => new()
    {
        { "../x-escaped", "entry name", "unexpected entry '../x-escaped'" },
        { "/tmp/turbooci-hostile-absolute", "entry name", "unexpected entry '/tmp/turbooci-hostile-absolute'" },
        { "symlink", "entry type", "'ext4.fs.meta' is a Symlink, not a regular file" },
    };

    [Theory]
    [MemberData(nameof(HostileTars))]
    public Task AMetaLayerTarWithTraversalAbsoluteNamesOrSymlinksIsRefused(string entry, string field, string message) => AssertRefused(
        layout => ReplaceMetaBlob(layout, 1, Gzip(tar =>
        {
            if (entry == "symlink")
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "ext4.fs.meta") { LinkName = "/etc/passwd" });
            }
            else
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entry) { DataStream = new MemoryStream("escaped"u8.ToArray()) });
            }
        })),
        MetaFormat, field, AnyOffset, message, _ => Assert.False(File.Exists("/tmp/turbooci-hostile-absolute")));

    [Fact]
    public Task AMetaLayerEntryThatClaimsMoreThanTheLimitIsRefusedBeforeItsDataIsWritten()
    {
        // A ustar header claiming 6 GiB (over the default 4 GiB for ext4.fs.meta), followed by only a few bytes.
        var header = new byte[512];
        MetaLayerBlob.WriteHeader(header, "ext4.fs.meta", 6L << 30);
        return AssertRefused(
            layout => ReplaceMetaBlob(layout, 1, Gzip([.. header, .. new byte[1024]])),
            MetaFormat, "entry size", 0, "'ext4.fs.meta' claims 6442450944 bytes, more than the 4294967296 allowed",
            dir => Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir, MetaFolder(dir, 1)))));
    }

    [Fact]
    public Task AMetaLayerWithoutTheTurboMarkerIsRefused() => AssertRefused(
        layout => ReplaceMetaBlob(layout, 1, Gzip(tar =>
        {
            var files = UnpackGood(layout, 1);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "ext4.fs.meta") { DataStream = new MemoryStream(files["ext4.fs.meta"]) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "gzip.meta") { DataStream = new MemoryStream(files["gzip.meta"]) });
        })),
        MetaFormat, ".turbo.ociv1", AnyOffset, "the blob has no .turbo.ociv1");

    [Fact]
    public Task AGzipIndexWithAWrongHeaderCrcIsRefused() => AssertRefused(
        layout => RepackMetaBlob(layout, 1, files => files["gzip.meta"][13] ^= 0x01), // a span byte, covered by the CRC
        "gzip index (ddgzidx)", "header.crc", 329, "damaged index");

    [Fact]
    public Task AGzipIndexOfAnotherBlobIsRefused() => AssertRefused(
        layout => RepackMetaBlob(layout, 1, files => files["gzip.meta"] = File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta"))),
        "gzip index (ddgzidx)", "header.gzip_file_size", 33, "the index is for a 307572-byte gzip blob");

    [Fact]
    public Task AnFsMetaWhoseRemoteEntriesPointPastTheTarIsRefused()
    {
        // overlaybd's own fs-meta maps tar bytes up to 4042752 (fixture README); the plain target tar here is smaller.
        Assert.True(converted.PlainTarSize < 4042752, $"the plain layer is {converted.PlainTarSize} bytes");
        return AssertRefused(
            layout => RepackMetaBlob(layout, 2, files => files["ext4.fs.meta"] = File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "ext4.fs.meta"))),
            "LSMT", "index.moffset", 214016, $"which has {converted.PlainTarSize} bytes");
    }

    [Fact]
    public Task AnFsMetaThatIsNotAnLsmtLayerIsRefused() => AssertRefused(
        layout => RepackMetaBlob(layout, 2, files => files["ext4.fs.meta"] = Enumerable.Range(0, 16384).Select(i => (byte)(i * 31)).ToArray()),
        "LSMT", "header.magic0", 0, "(layers[2])");

    [Fact]
    public Task ABaseLayerThatIsNotAnOverlaybdLayerIsRefused() => AssertRefused(
        layout => ReplaceMetaBlob(layout, 0, new byte[8192]),
        "LSMT", "header.magic0", 0, "(layers[0])");

    // ---- helpers ----

    private const int AnyOffset = -1;

    /// <summary>Copies the good layout, applies one change, pulls into work/dir: must throw as described, and leave work/ holding only dir/ and the layout.</summary>
    private async Task AssertRefused(Action<Registry.OciLayout> change, string format, string field, long offset, string message, Action<string>? alsoCheck = null)
    {
        using var work = new TempDir("hostile-");
        var layout = CopyLayout(work);
        change(layout);
        var dir = work.File("dir");
        using var client = new RegistryClient();
        var error = await Assert.ThrowsAsync<TurboOciFormatException>(() =>
            new MetaImagePuller().PullAsync(ImageStores.Parse($"oci:{layout.Directory}:{Tag}", client), dir));
        Assert.Equal(format, error.Format);
        Assert.Equal(field, error.Field);
        if (offset != AnyOffset)
        {
            Assert.Equal(offset, error.Offset);
        }

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, StackIndexer.ConfigName)));
        Assert.Equal(["dir", "layout"], Directory.GetFileSystemEntries(work.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        alsoCheck?.Invoke(dir);
    }

    private Registry.OciLayout CopyLayout(TempDir work)
    {
        var target = work.File("layout");
        foreach (var file in Directory.GetFiles(converted.Layout, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(converted.Layout, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }

        return new Registry.OciLayout(target);
    }

    private static ImageManifest ReadManifest(Registry.OciLayout layout) => layout.ReadManifest(layout.Resolve(Tag)).AsManifest();

    private static void EditLayer(Registry.OciLayout layout, int index, Func<Descriptor, Descriptor> edit)
    {
        var manifest = ReadManifest(layout);
        var layers = manifest.Layers.ToList();
        layers[index] = edit(layers[index]);
        var content = TurboOciLabels.ToContent(manifest with { Layers = layers });
        layout.WriteBlob(content.Digest, content.Bytes.Span);
        layout.Tag(content.Descriptor, Tag);
    }

    /// <summary>Stores <paramref name="blob"/> as meta layer <paramref name="index"/>, with a descriptor and annotations that tell the truth about it.</summary>
    private static void ReplaceMetaBlob(Registry.OciLayout layout, int index, byte[] blob)
    {
        var digest = Digest.Sha256(blob);
        layout.WriteBlob(digest, blob);
        EditLayer(layout, index, d => d with
        {
            Digest = digest.ToString(),
            Size = blob.Length,
            Annotations = With(With(d.Annotations, BlobDigestKey, digest.ToString()), BlobSizeKey, blob.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        });
    }

    /// <summary>The good meta layer's files, changed, packed again by our writer (the tar itself is well formed).</summary>
    private static void RepackMetaBlob(Registry.OciLayout layout, int index, Action<Dictionary<string, byte[]>> change)
    {
        var files = UnpackGood(layout, index);
        change(files);
        using var folder = new TempDir("repack-");
        foreach (var (name, bytes) in files)
        {
            File.WriteAllBytes(folder.File(name), bytes);
        }

        using var output = new MemoryStream();
        MetaLayerBlob.Write(folder.Path, output);
        ReplaceMetaBlob(layout, index, output.ToArray());
    }

    private static Dictionary<string, byte[]> UnpackGood(Registry.OciLayout layout, int index)
    {
        var files = new Dictionary<string, byte[]>();
        using var blob = File.OpenRead(layout.BlobPath(ReadManifest(layout).Layers[index].ParsedDigest));
        MetaLayerBlob.Unpack(blob, name =>
        {
            return new CapturingStream(new MemoryStream(), bytes => files[name] = bytes);
        });
        return files;
    }

    private static string MetaFolder(string dir, int index) =>
        Path.GetFileName(Assert.Single(Directory.GetDirectories(dir, $"{index}-*")));

    private static Dictionary<string, string> With(IReadOnlyDictionary<string, string>? annotations, string key, string value) =>
        new(annotations ?? new Dictionary<string, string>()) { [key] = value };

    /// <summary>An archive written with .NET's own tar writer (not ours), gzip-compressed.</summary>
    private static byte[] Gzip(Action<TarWriter> write)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(writer);
        }

        return Gzip(tar.ToArray());
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(bytes);
        }

        return output.ToArray();
    }

    /// <summary>A memory stream that hands its bytes over when the unpacker closes it.</summary>
    private sealed class CapturingStream(MemoryStream inner, Action<byte[]> onClose) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                onClose(inner.ToArray());
            }

            base.Dispose(disposing);
        }
    }
}
