using TurboOci.Formats.ZFile;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>
/// <see cref="IFileRangeSource"/> on layers and stacks: every run a layer names, read from its file (or as zeros),
/// holds exactly the bytes <see cref="BlockSource.ReadAt"/> returns there.
/// </summary>
public sealed class FileRangeTests
{
    private const int Size = 4 << 20;

    [Fact]
    public void RunsOfAStackWithOverwritesTrimsHolesAndAWritableUpperReadAsReadAtDoes()
    {
        using var temp = new TempDir();
        var random = new Random(71);
        CommitLayer(temp, "l1", random, lower: null, new BlobPackaging());
        using var l1 = LayerBlob.OpenFile(temp.File("l1.commit"));
        CommitLayer(temp, "l2", random, l1, new BlobPackaging { Tar = true }); // a tar envelope: the layer is a slice of its blob
        using var l2 = LayerBlob.OpenFile(temp.File("l2.commit"));
        using var lowers = new LayerStack([l1, l2]);
        using var upper = WritableLayer.Create(temp.File("up.data"), temp.File("up.index"), 0, lower: lowers);
        Scribble(upper, random);

        using var stack = new LayerStack([l1, l2, upper]);
        var (zeros, fileBytes) = AssertRunsMatch(stack, random, ranges: 400);
        Assert.True(zeros > 0 && fileBytes > 0, $"zeros {zeros}, file bytes {fileBytes}: the stack must have both");

        // Each layer alone, and the writable layer over its lowers, resolve just as well.
        AssertRunsMatch(l1, random, ranges: 100);
        AssertRunsMatch(l2, random, ranges: 100);
        AssertRunsMatch(upper, random, ranges: 200);
        AssertRunsMatch(new SliceBlockSource(stack, 12345, Size - 20000), random, ranges: 100);
    }

    [Fact]
    public void RunsInACompressedLayerAreNotNamedAndTheOthersStillAre()
    {
        using var temp = new TempDir();
        var random = new Random(72);
        CommitLayer(temp, "l1", random, lower: null, new BlobPackaging());
        using var l1 = LayerBlob.OpenFile(temp.File("l1.commit"));
        CommitLayer(temp, "l2", random, l1, new BlobPackaging { Compression = ZFileAlgorithm.Lz4 });
        using var l2 = LayerBlob.OpenFile(temp.File("l2.commit"));
        using var stack = new LayerStack([l1, l2]);

        var compressed = 0;
        var named = 0;
        var buffer = new byte[64 << 10];
        foreach (var extent in stack.Index.Entries.ToArray())
        {
            var offset = (long)extent.Offset * 512;
            var length = (int)Math.Min(buffer.Length, (long)extent.Length * 512);
            var resolved = FileRanges.TryResolve(stack, offset, length, out var run);
            if (extent.Tag == 0 && !extent.Zeroed)
            {
                Assert.False(resolved, $"{extent} lies in the lz4 layer, which no file holds verbatim");
                compressed++;
                continue;
            }

            Assert.True(resolved, $"{extent}");
            stack.ReadExactlyAt(offset, buffer.AsSpan(0, run.Length));
            Assert.True(buffer.AsSpan(0, run.Length).SequenceEqual(ReadRun(run)), $"{extent}: {run}");
            named++;
        }

        Assert.True(compressed > 0 && named > 0);
    }

    [Fact]
    public void NoRunIsNamedPastTheEndOrForAnEmptyRange()
    {
        using var temp = new TempDir();
        CommitLayer(temp, "l1", new Random(73), lower: null, new BlobPackaging());
        using var layer = LayerBlob.OpenFile(temp.File("l1.commit"));
        Assert.False(layer.TryGetFileRange(Size, 4096, out _));
        Assert.False(layer.TryGetFileRange(0, 0, out _));
        Assert.False(layer.TryGetFileRange(-1, 4096, out _));
        Assert.True(layer.TryGetFileRange(Size - 100, 4096, out var last));
        Assert.Equal(100, last.Length);
    }

    /// <summary>Writes random extents (some left as holes), trims a few, and commits the layer as a blob.</summary>
    private static void CommitLayer(TempDir temp, string name, Random random, BlockSource? lower, BlobPackaging packaging)
    {
        using (var layer = WritableLayer.Create(temp.File($"{name}.data"), temp.File($"{name}.index"), Size, lower: lower))
        {
            Scribble(layer, random);
            LayerBlobWriter.Write(temp.File($"{name}.commit"), packaging, stream => layer.Commit(stream));
        }
    }

    private static void Scribble(WritableLayer layer, Random random)
    {
        for (var i = 0; i < 40; i++)
        {
            var data = new byte[random.Next(1, 96) * 512];
            random.NextBytes(data);
            layer.WriteAt(random.Next(0, (Size - data.Length) / 512) * 512L, data);
        }

        for (var i = 0; i < 6; i++)
        {
            layer.Trim(random.Next(0, (Size / 512) - 64) * 512L, random.Next(1, 64) * 512);
        }
    }

    /// <summary>
    /// Walks random ranges run by run: each run is non-empty, within what was asked, and reads (from its file,
    /// or as zeros) what ReadAt reads. Returns how many bytes were zero runs and file runs.
    /// </summary>
    private static (long Zeros, long FileBytes) AssertRunsMatch(BlockSource source, Random random, int ranges)
    {
        long zeros = 0, fileBytes = 0;
        for (var i = 0; i < ranges; i++)
        {
            var offset = random.NextInt64(0, source.Size);
            var length = (int)Math.Min(random.Next(1, 1 << 20), source.Size - offset);
            var expected = new byte[length];
            source.ReadExactlyAt(offset, expected);
            for (var done = 0; done < length;)
            {
                Assert.True(FileRanges.TryResolve(source, offset + done, length - done, out var run), $"offset {offset + done}");
                Assert.InRange(run.Length, 1, length - done);
                Assert.True(expected.AsSpan(done, run.Length).SequenceEqual(ReadRun(run)), $"run {run} at device offset {offset + done}");
                if (run.IsZeros)
                {
                    zeros += run.Length;
                }
                else
                {
                    fileBytes += run.Length;
                }

                done += run.Length;
            }
        }

        return (zeros, fileBytes);
    }

    private static byte[] ReadRun(FileRange run)
    {
        var bytes = new byte[run.Length];
        if (!run.IsZeros)
        {
            Assert.Equal(run.Length, RandomAccess.Read(run.File!, bytes, run.FileOffset));
        }

        return bytes;
    }
}
