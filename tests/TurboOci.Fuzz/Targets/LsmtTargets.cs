using TurboOci.Formats.Lsmt;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>Reads what a fuzzed layer claims to hold, bounded so one input stays fast whatever its claims.</summary>
internal static class LsmtFuzzReads
{
    private const int MaxReadsPerInput = 64;
    private const int ReadLength = 64 * 1024;

    /// <summary>Reads the start of each mapped range and walks the extents: every data path of the layer runs once.</summary>
    public static void Exercise(MappedLayer layer, ReadOnlySpan<SegmentMapping> entries)
    {
        var buffer = new byte[ReadLength];
        var reads = 0;
        foreach (var entry in entries)
        {
            if (reads++ == MaxReadsPerInput)
            {
                break;
            }

            var offset = (long)entry.Offset * LsmtConstants.SectorSize;
            // Straddle the entry's start so gaps and neighbours are read too; unaligned on purpose.
            layer.ReadAt(Math.Max(0, offset - 700), buffer);
        }

        foreach (var extent in layer.GetExtents(0, layer.Size).Take(MaxReadsPerInput))
        {
            if (extent.Length < 0 || extent.Offset < 0)
            {
                throw new InvalidOperationException($"impossible extent {extent}");
            }
        }
    }
}

/// <summary>A layer blob as it comes from a registry: tar envelope? → ZFile? → committed LSMT layer.</summary>
public sealed class LsmtBlobTarget : IFuzzTarget
{
    public string Name => "lsmt-blob";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var layer = LayerBlob.Open(new MemoryBlockSource(input.ToArray()));
        LsmtFuzzReads.Exercise(layer, layer.Index.Entries);
    }
}

/// <summary>A committed warp file ("ext4.fs.meta" payload) read with a small target standing in for the tar.</summary>
public sealed class LsmtWarpTarget : IFuzzTarget
{
    private static readonly MemoryBlockSource s_target = new(Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 31)).ToArray());

    public string Name => "lsmt-warp";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var layer = CommittedLayer.Open(new MemoryBlockSource(input.ToArray()), s_target);
        LsmtFuzzReads.Exercise(layer, layer.Index.Entries);
    }
}

/// <summary>
/// A writable layer's index file (the replay log) over a small fixed data file: what a restart reads. The input is
/// the whole index file, header included.
/// </summary>
public sealed class LsmtWritableIndexTarget : IFuzzTarget
{
    public string Name => "lsmt-rw-index";

    public void Run(ReadOnlySpan<byte> input)
    {
        var folder = Directory.CreateTempSubdirectory("turbooci-fuzz-lsmt-");
        try
        {
            var data = Path.Combine(folder.FullName, "data");
            var index = Path.Combine(folder.FullName, "index");
            using (WritableLayer.Create(data, Path.Combine(folder.FullName, "unused"), 1 << 20))
            {
            }

            // 1 MiB of data after the header (sparse except a patterned start), enough for the reference RW logs.
            using (var stream = File.OpenWrite(data))
            {
                stream.Seek(0, SeekOrigin.End);
                stream.Write(Enumerable.Range(0, 64 * 1024).Select(i => (byte)i).ToArray());
                stream.SetLength(4096 + (1 << 20));
            }

            File.WriteAllBytes(index, input.ToArray());
            using var layer = WritableLayer.Open(data, index);
            LsmtFuzzReads.Exercise(layer, layer.GetEntries());

            // A reopened layer must keep accepting writes.
            if (layer.Size >= 4096)
            {
                layer.WriteAt(0, new byte[4096]);
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
