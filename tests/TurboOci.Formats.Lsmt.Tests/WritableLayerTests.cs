using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>Writable layers: the files they write, restart, commit, and reads over lower layers.</summary>
public sealed class WritableLayerTests
{
    private const int UuidStart = LsmtHeader.UuidOffset;
    private const int UuidEnd = LsmtHeader.UuidOffset + LsmtHeader.UuidFieldLength;

    /// <summary>Byte k of a README write "w:OFF:LEN:A:B:M" is (A*k + B) mod M.</summary>
    private static byte[] Pattern(int length, int a, int b, int m) => Enumerable.Range(0, length).Select(k => (byte)(((long)a * k + b) % m)).ToArray();

    private static void ApplyLayer1Writes(BlockSource layer)
    {
        layer.WriteAt(0, Pattern(65536, 7, 1, 251));
        layer.WriteAt(1048576, Pattern(4096, 0, 171, 256));
        layer.WriteAt(2097664, Pattern(1536, 13, 5, 256));
        layer.WriteAt(16384, Pattern(8192, 0, 90, 256));
        layer.WriteAt(536870912, Pattern(262144, 1, 0, 256));
        layer.Trim(1049600, 2048);
    }

    /// <summary>Two files are equal apart from the random uuid that overlaybd-create fills in.</summary>
    private static void AssertEqualButUuid(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.Equal(expected.AsSpan(0, UuidStart).ToArray(), actual.AsSpan(0, UuidStart).ToArray());
        Assert.Equal(expected.AsSpan(UuidEnd).ToArray(), actual.AsSpan(UuidEnd).ToArray());
    }

    [Fact]
    public void Create_writes_the_headers_overlaybd_create_writes()
    {
        using var temp = new TempDir();
        using (WritableLayer.Create(temp.File("d"), temp.File("i"), LsmtFixtures.VirtualSize))
        {
        }

        AssertEqualButUuid(LsmtFixtures.Bytes("l1.empty.rw.data"), File.ReadAllBytes(temp.File("d")));
        AssertEqualButUuid(LsmtFixtures.Bytes("l1.empty.rw.index"), File.ReadAllBytes(temp.File("i")));
    }

    [Fact]
    public void The_reference_writes_give_the_reference_files_and_commit()
    {
        using var temp = new TempDir();
        using (var layer = WritableLayer.Create(temp.File("d"), temp.File("i"), LsmtFixtures.VirtualSize))
        {
            ApplyLayer1Writes(layer);
            layer.Flush();
        }

        AssertEqualButUuid(LsmtFixtures.Bytes("l1.rw.data"), File.ReadAllBytes(temp.File("d")));
        AssertEqualButUuid(LsmtFixtures.Bytes("l1.rw.index"), File.ReadAllBytes(temp.File("i")));

        // After a restart the layer continues where it was, and commits to overlaybd's l1.commit.
        using var reopened = WritableLayer.Open(temp.File("d"), temp.File("i"));
        Assert.Equal(LsmtFixtures.Layer1Sha256, LsmtFixtures.Sha256(reopened));
        using var output = new MemoryStream();
        reopened.Commit(output, new CommitOptions { Uuid = "11111111-1111-1111-1111-111111111111" });
        Assert.Equal(LsmtFixtures.Sha256(LsmtFixtures.Bytes("l1.commit")), LsmtFixtures.Sha256(output.ToArray()));
    }

    [Fact]
    public void Random_writes_and_trims_survive_restart_commit_and_compression()
    {
        const int Size = 8 << 20;
        using var temp = new TempDir();
        var shadow = new byte[Size];
        var random = new Random(20261128);
        using (var layer = WritableLayer.Create(temp.File("d"), temp.File("i"), Size))
        {
            for (var i = 0; i < 300; i++)
            {
                var offset = random.Next(Size - 1);
                var length = random.Next(1, Math.Min(Size - offset, 128 * 1024));
                if (random.Next(5) == 0)
                {
                    layer.Trim(offset, length);
                    shadow.AsSpan(offset, length).Clear();
                }
                else
                {
                    var data = new byte[length];
                    random.NextBytes(data);
                    layer.WriteAt(offset, data);
                    data.CopyTo(shadow, offset);
                }
            }

            Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(layer));
        }

        using var reopened = WritableLayer.Open(temp.File("d"), temp.File("i"));
        Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(reopened));

        // Keep writing after the restart.
        reopened.WriteAt(4096, Pattern(8192, 3, 1, 256));
        Pattern(8192, 3, 1, 256).CopyTo(shadow, 4096);
        Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(reopened));

        foreach (var packaging in new[] { new BlobPackaging(), new BlobPackaging { Compression = ZFileAlgorithm.Zstd, BlockSize = 16384, Tar = true } })
        {
            var blob = temp.File($"commit-{packaging.Compression}");
            LayerBlobWriter.Write(blob, packaging, stream => reopened.Commit(stream));
            using var committed = LayerBlob.OpenFile(blob);
            Assert.Equal(LsmtFixtures.Sha256(shadow), LsmtFixtures.Sha256(committed));
            Assert.Equal(0UL, committed.Trailer.IndexSize % 256);
        }
    }

    [Fact]
    public void Upper_writes_and_trims_hide_the_lower_layers()
    {
        using var temp = new TempDir();
        using var lower = LayerBlob.OpenStack([LsmtFixtures.Path("l1.commit")]);
        using var upper = WritableLayer.Create(temp.File("d"), temp.File("i"), 0, parentUuid: "11111111-1111-1111-1111-111111111111", lower);
        Assert.Equal(LsmtFixtures.VirtualSize, upper.Size);

        // Layer 2's operations, applied on top of layer 1, give the documented two-layer disk.
        upper.WriteAt(32768, Pattern(16384, 3, 11, 256));
        upper.WriteAt(3145728, Pattern(4096, 0, 205, 256));
        upper.Trim(536875008, 8192);
        upper.WriteAt(0, Pattern(512, 0, 255, 256));
        Assert.Equal(LsmtFixtures.Layers12Sha256, LsmtFixtures.Sha256(upper));

        // An unaligned write patches just its bytes, the rest of the sector still reads from the lower layer.
        var before = new byte[1024];
        upper.ReadExactlyAt(65536 - 512, before);
        upper.WriteAt(65536 - 3, "abcdef"u8);
        var after = new byte[1024];
        upper.ReadExactlyAt(65536 - 512, after);
        "abcdef"u8.CopyTo(before.AsSpan(509));
        Assert.Equal(before, after);
    }

    [Fact]
    public void Concurrent_readers_see_consistent_data_while_a_writer_appends()
    {
        const int Size = 4 << 20;
        using var temp = new TempDir();
        using var lower = LayerBlob.OpenStack([LsmtFixtures.Path("l1.commit.lz4"), LsmtFixtures.Path("l2.commit.lz4")]);
        var expectedLower = new byte[Size];
        lower.ReadExactlyAt(0, expectedLower);
        using var upper = WritableLayer.Create(temp.File("d"), temp.File("i"), 0, lower: lower);

        // The writer rewrites upper blocks with the same bytes the lower holds, so every read must see expectedLower.
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 400; i++)
            {
                var offset = i * 4096 % Size;
                upper.WriteAt(offset, expectedLower.AsSpan(offset, 4096));
            }
        });
        var readers = Enumerable.Range(0, 4).Select(r => Task.Run(() =>
        {
            var random = new Random(r);
            var buffer = new byte[12288];
            for (var i = 0; i < 2000; i++)
            {
                var offset = random.Next(Size - buffer.Length);
                upper.ReadExactlyAt(offset, buffer);
                Assert.True(buffer.AsSpan().SequenceEqual(expectedLower.AsSpan(offset, buffer.Length)), $"read at {offset} differs");
            }
        })).ToArray();
        Task.WaitAll([writer, .. readers]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AScratchLayerLogsEveryEntryInBatchesAndReopensTheSame(bool warp)
    {
        // More entries than one log batch holds (4096), written out of order, as the indexer writes: the index file
        // written in batches replays to the same layer as the one that logged each entry at once.
        using var temp = new TempDir();
        const long Size = 64L << 20;
        var random = new Random(5);
        var writes = Enumerable.Range(0, 9000).Select(i => (Offset: random.Next(0, (int)(Size / 512) - 16) * 512L, Length: random.Next(1, 16) * 512)).ToList();
        byte[] expected;
        foreach (var (name, scratch) in new[] { ("plain", false), ("scratch", true) })
        {
            using var layer = warp
                ? WritableLayer.CreateWarp(temp.File($"{name}.data"), temp.File($"{name}.index"), Size, target: null, scratch: scratch)
                : WritableLayer.Create(temp.File($"{name}.data"), temp.File($"{name}.index"), Size, scratch: scratch);
            for (var i = 0; i < writes.Count; i++)
            {
                layer.WriteAt(writes[i].Offset, Pattern(writes[i].Length, i % 251 + 1, i, 256));
            }

            layer.Flush();
        }

        using (var plain = warp ? WritableLayer.OpenWarp(temp.File("plain.data"), temp.File("plain.index"), target: null)
                                : WritableLayer.Open(temp.File("plain.data"), temp.File("plain.index")))
        {
            expected = new byte[Size];
            plain.ReadAt(0, expected);
        }

        using var reopened = warp ? WritableLayer.OpenWarp(temp.File("scratch.data"), temp.File("scratch.index"), target: null)
                                  : WritableLayer.Open(temp.File("scratch.data"), temp.File("scratch.index"));
        var actual = new byte[Size];
        reopened.ReadAt(0, actual);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "the scratch layer reads back differently after a reopen");
        Assert.Equal(new FileInfo(temp.File("plain.index")).Length, new FileInfo(temp.File("scratch.index")).Length);
    }
}
