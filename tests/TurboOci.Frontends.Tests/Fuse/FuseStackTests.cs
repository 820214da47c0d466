using System.Security.Cryptography;
using TurboOci.Formats.Lsmt;
using TurboOci.Formats.ZFile;
using TurboOci.Frontends.Fuse;
using TurboOci.Interop.Fuse;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Fuse;

/// <summary>
/// A stack of LSMT layers served through FUSE: READ replies gathered from mappings of the layer files (and zeros)
/// carry exactly the stack's bytes, with the mapped path on and off, and runs no file holds verbatim (a
/// compressed layer) still answer through a buffer.
/// </summary>
public sealed class FuseStackTests
{
    private const int MiB = 1 << 20;
    private const int Size = 8 * MiB;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AStackOfLayerFilesReadsTheStacksBytesWithMappedReadsOnAndOff(bool mappedReads)
    {
        using var temp = new TempDir();
        using var stack = BuildStack(temp, middle: new BlobPackaging { Tar = true });
        AssertServesStack(temp, stack, mappedReads, out var fuseReads, out var mappedReplies, out var bufferedReplies);
        // Every read of an all-verbatim stack that carries bytes is mapped (reads at the end of the file carry none;
        // how many of those the kernel sends varies).
        if (mappedReads)
        {
            Assert.Equal(0, bufferedReplies);
            Assert.InRange(mappedReplies, fuseReads - 4, fuseReads);
        }
        else
        {
            Assert.Equal(0, mappedReplies);
        }
    }

    [Fact]
    public void RunsInACompressedLayerGoThroughABufferAndTheRestFromMappings()
    {
        using var temp = new TempDir();
        using var stack = BuildStack(temp, middle: new BlobPackaging { Compression = ZFileAlgorithm.Zstd });
        AssertServesStack(temp, stack, mappedReads: true, out var fuseReads, out var mappedReplies, out var bufferedReplies);
        Assert.InRange(mappedReplies, 1, fuseReads - 1);
        Assert.True(bufferedReplies > 0);
    }

    [Fact]
    public void AReadOfMoreRunsThanOneReplyGathersGoesThroughABuffer()
    {
        using var temp = new TempDir();
        Commit(temp, "base", new BlobPackaging(), lower: null, layer => layer.WriteAt(0, RandomBytes(new Random(3), Size)));
        var layers = new List<MappedLayer> { LayerBlob.OpenFile(temp.File("base.commit")) };

        // 512 bytes of the upper every KiB of the first MiB: one 1 MiB read spans 2048 runs, more than a reply gathers.
        var upper = WritableLayer.Create(temp.File("upper.data"), temp.File("upper.index"), 0, lower: layers[0]);
        var random = new Random(4);
        for (var offset = 0; offset < MiB; offset += 1024)
        {
            upper.WriteAt(offset, RandomBytes(random, 512));
        }

        layers.Add(upper);
        using var stack = new LayerStack(layers, ownsLayers: true);
        Assert.True(FuseReplyVector.MaxPieces < 2048);
        AssertServesStack(temp, stack, mappedReads: true, out var fuseReads, out var mappedReplies, out var bufferedReplies);
        Assert.InRange(mappedReplies, 1, fuseReads - 1);
        Assert.True(bufferedReplies > 0);
    }

    [Fact]
    public void ADamagedCompressedLayerFailsItsReadsWithEioAndTheServerKeepsServing()
    {
        using var temp = new TempDir();
        using var stack = BuildStack(temp, middle: new BlobPackaging { Compression = ZFileAlgorithm.Zstd });
        var intact = new byte[stack.Size];
        stack.ReadExactlyAt(0, intact);

        // Flip a byte halfway into the compressed blocks: their checksum no longer matches.
        var blob = temp.File("middle.commit");
        using (var file = File.OpenHandle(blob, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            var at = RandomAccess.GetLength(file) / 2;
            var one = new byte[1];
            RandomAccess.Read(file, one, at);
            one[0] ^= 0xFF;
            RandomAccess.Write(file, one, at);
        }

        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        using var fuse = FuseFileMount.Mount(fuseDir, stack, new FuseFileMountOptions { ReadOnly = true });
        using var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.Read);
        var buffer = new byte[64 << 10];
        var failed = 0;
        for (var offset = 0; offset < Size; offset += buffer.Length)
        {
            try
            {
                Assert.Equal(buffer.Length, RandomAccess.Read(handle, buffer, offset));
                Assert.True(buffer.AsSpan().SequenceEqual(intact.AsSpan(offset, buffer.Length)), $"64 KiB at {offset}");
            }
            catch (IOException e) when (e.Message.Contains("Input/output error", StringComparison.Ordinal))
            {
                failed++;
            }
        }

        Assert.InRange(failed, 1, (Size / buffer.Length) - 1); // the damaged block's reads fail, every other read is served
        Assert.NotNull(fuse.FileSystem.LastSourceError);
        Assert.Null(fuse.WorkerFault);
        Assert.True(fuse.MappedReplies > 0);
    }

    private static void AssertServesStack(TempDir temp, BlockSource stack, bool mappedReads, out long fuseReads, out long mappedReplies, out long bufferedReplies)
    {
        var expected = new byte[stack.Size];
        stack.ReadExactlyAt(0, expected);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        using var fuse = FuseFileMount.Mount(fuseDir, stack, new FuseFileMountOptions { MappedReads = mappedReads, ReadOnly = true });

        // The whole device front to back, then 1 MiB and odd-sized reads at random offsets across layer boundaries.
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected)), TestImages.Sha256(fuse.FilePath));
        using var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.Read);
        var random = new Random(5);
        var buffer = new byte[MiB];
        for (var i = 0; i < 200; i++)
        {
            var offset = random.NextInt64(0, stack.Size);
            var length = i % 2 == 0 ? MiB : random.Next(1, MiB);
            var read = RandomAccess.Read(handle, buffer.AsSpan(0, length), offset);
            Assert.Equal((int)Math.Min(length, stack.Size - offset), read);
            Assert.True(buffer.AsSpan(0, read).SequenceEqual(expected.AsSpan((int)offset, read)), $"{length} bytes at {offset}");
        }

        Assert.Null(fuse.WorkerFault);
        Assert.Null(fuse.FileSystem.LastSourceError);
        fuseReads = fuse.FileSystem.RequestCount(FuseOpcode.Read);
        mappedReplies = fuse.MappedReplies;
        bufferedReplies = fuse.BufferedReplies;
    }

    /// <summary>
    /// Three layers: a committed base filled in 1 MiB pieces with a hole, a middle layer packaged as asked that
    /// overwrites and trims parts of it, and a writable upper over both with small writes and a trim.
    /// </summary>
    private static LayerStack BuildStack(TempDir temp, BlobPackaging middle)
    {
        var random = new Random(9);
        Commit(temp, "base", new BlobPackaging(), lower: null, layer =>
        {
            for (var offset = 0; offset < Size; offset += MiB)
            {
                if (offset != 3 * MiB)
                {
                    layer.WriteAt(offset, RandomBytes(random, MiB));
                }
            }
        });
        var layers = new List<MappedLayer> { LayerBlob.OpenFile(temp.File("base.commit")) };
        Commit(temp, "middle", middle, layers[0], layer =>
        {
            for (var i = 0; i < 24; i++)
            {
                layer.WriteAt(random.Next(0, (Size / 512) - 512) * 512L, RandomBytes(random, random.Next(1, 512) * 512));
            }

            layer.Trim(5 * MiB, 300 * 1024);
        });
        layers.Add(LayerBlob.OpenFile(temp.File("middle.commit")));
        var lowers = new LayerStack(layers.ToArray());
        var upper = WritableLayer.Create(temp.File("upper.data"), temp.File("upper.index"), 0, lower: lowers);
        for (var i = 0; i < 16; i++)
        {
            upper.WriteAt(random.Next(0, (Size / 512) - 64) * 512L, RandomBytes(random, random.Next(1, 64) * 512));
        }

        upper.Trim(MiB + 4096, 64 * 1024);
        layers.Add(upper);
        return new LayerStack(layers, ownsLayers: true);
    }

    private static void Commit(TempDir temp, string name, BlobPackaging packaging, BlockSource? lower, Action<WritableLayer> write)
    {
        using var layer = WritableLayer.Create(temp.File($"{name}.data"), temp.File($"{name}.index"), Size, lower: lower);
        write(layer);
        LayerBlobWriter.Write(temp.File($"{name}.commit"), packaging, stream => layer.Commit(stream));
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
