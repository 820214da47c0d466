using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>Our commit and merge write what overlaybd-commit and overlaybd-merge wrote, byte for byte where the codec allows.</summary>
public sealed class CommitTests
{
    private static readonly CommitOptions Layer1 = new() { Uuid = "11111111-1111-1111-1111-111111111111" };
    private static readonly CommitOptions Layer2 = new() { Uuid = "22222222-2222-2222-2222-222222222222", ParentUuid = "11111111-1111-1111-1111-111111111111" };

    private static byte[] Commit(TempDir temp, string layer, CommitOptions options, BlobPackaging packaging)
    {
        using var rw = WritableLayer.Open(LsmtFixtures.CopyToTemp(temp, $"{layer}.rw.data"), LsmtFixtures.CopyToTemp(temp, $"{layer}.rw.index"));
        var output = temp.File($"{layer}.out");
        LayerBlobWriter.Write(output, packaging, stream => rw.Commit(stream, options));
        return File.ReadAllBytes(output);
    }

    [Theory]
    [InlineData("l1", "l1.commit")]
    [InlineData("l2", "l2.commit")]
    public void Commit_of_the_reference_rw_layer_is_byte_identical(string layer, string expected)
    {
        using var temp = new TempDir();
        var actual = Commit(temp, layer, layer == "l1" ? Layer1 : Layer2, new BlobPackaging());
        Assert.Equal(LsmtFixtures.Sha256(LsmtFixtures.Bytes(expected)), LsmtFixtures.Sha256(actual));
    }

    [Theory]
    [InlineData("l1", "l1.commit.lz4", ZFileAlgorithm.Lz4)]
    [InlineData("l1", "l1.commit.zstd", ZFileAlgorithm.Zstd)]
    [InlineData("l2", "l2.commit.lz4", ZFileAlgorithm.Lz4)]
    public void Compressed_commit_matches_the_reference_field_for_field(string layer, string expected, ZFileAlgorithm algorithm)
    {
        using var temp = new TempDir();
        var actual = Commit(temp, layer, layer == "l1" ? Layer1 : Layer2, new BlobPackaging { Compression = algorithm });
        var reference = LsmtFixtures.Bytes(expected);
        using var ours = ZFileReader.Open(new MemoryBlockSource(actual));
        using var theirs = ZFileReader.Open(new MemoryBlockSource(reference));

        // Header (flags 0x1b, overwritten) and trailer fields, apart from what depends on compressed sizes.
        Assert.Equal(0x1BUL, (ulong)ours.Header.Flags & 0x3F);
        Assert.Equal((ulong)theirs.Header.Flags, (ulong)ours.Header.Flags);
        Assert.Equal(theirs.Header.OriginalFileSize, ours.Header.OriginalFileSize);
        Assert.Equal(theirs.Header.IndexSize, ours.Header.IndexSize);
        Assert.Equal(theirs.Header.BlockSize, ours.Header.BlockSize);
        Assert.Equal(theirs.Header.Algorithm, ours.Header.Algorithm);
        Assert.Equal(theirs.Header.Verify, ours.Header.Verify);

        // The decompressed payload is the reference's uncompressed commit, byte for byte.
        var payload = new byte[ours.Size];
        ours.ReadExactlyAt(0, payload);

        // With the same LZ4/zstd libraries as overlaybd's build, even the compressed blocks come out identical.
        Assert.Equal(LsmtFixtures.Sha256(reference), LsmtFixtures.Sha256(actual));
        Assert.Equal(LsmtFixtures.Sha256(LsmtFixtures.Bytes(layer + ".commit")), LsmtFixtures.Sha256(payload));
    }

    [Fact]
    public void Tar_wrapped_compressed_commit_has_the_reference_envelope()
    {
        using var temp = new TempDir();
        var actual = Commit(temp, "l1", Layer1, new BlobPackaging { Compression = ZFileAlgorithm.Lz4, Tar = true });
        var reference = LsmtFixtures.Bytes("l1.commit.lz4.tar");
        using var blob = new MemoryBlockSource(actual);
        Assert.True(TarEnvelope.TryOpen(blob, out var payload));
        Assert.Equal(1536, payload.Start);
        Assert.Equal(reference.Length, actual.Length);

        // The envelope (PAX header, record, ustar header with the output file's mode and root's names) is overlaybd's, byte for byte.
        Assert.Equal(LsmtFixtures.Sha256(reference), LsmtFixtures.Sha256(actual));
        using var layer = LayerBlob.Open(blob);
        Assert.Equal(LsmtFixtures.Layer1Sha256, LsmtFixtures.Sha256(layer));
    }

    [Fact]
    public void Merge_of_two_compressed_layers_equals_overlaybd_merge_byte_for_byte()
    {
        using var temp = new TempDir();
        using var stack = LayerBlob.OpenStack([LsmtFixtures.Path("l1.commit.lz4"), LsmtFixtures.Path("l2.commit.lz4")]);
        var output = temp.File("merged");

        // overlaybd-merge compresses with LZ4 by default and does not overwrite the ZFile header.
        LayerBlobWriter.Write(output, new BlobPackaging { Compression = ZFileAlgorithm.Lz4, OverwriteHeader = false }, stream => LayerWriter.WriteMerged(stream, stack));
        Assert.Equal(LsmtFixtures.Sha256(LsmtFixtures.Bytes("merged.l1l2.lz4")), LsmtFixtures.Sha256(File.ReadAllBytes(output)));

        // The merged index keeps each range's source level as its on-disk tag (1 = the lower layer).
        using var merged = LayerBlob.OpenFile(output);
        using var raw = new MemoryStream();
        LayerWriter.WriteMerged(raw, stack);
        var trailer = LsmtHeader.Read(raw.ToArray().AsSpan((int)raw.Length - 4096), raw.Length - 4096, "trailer");
        var onDisk = SegmentMapping.ReadAll(raw.ToArray().AsSpan((int)trailer.IndexOffset, (int)trailer.IndexSize * 16)).Where(e => !e.IsPadding).ToList();
        Assert.Equal(merged.Index.Count, onDisk.Count);
        Assert.Contains(onDisk, e => e.Tag == 1);
        Assert.Contains(onDisk, e => e.Tag == 0);
    }
}
