using TurboOci.Formats.ZFile;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>The ZFile reader: open, then decode what the file claims to hold (bounded per input).</summary>
public sealed class ZFileReaderTarget : IFuzzTarget
{
    private const int MaxVerifiedBlocks = 4096;
    private const int ProbeLength = 256 * 1024;

    public string Name => "zfile";

    public void Run(ReadOnlySpan<byte> input)
    {
        var source = new MemoryBlockSource(input.ToArray());
        if (!ZFileReader.IsZFile(source))
        {
            // Not a ZFile by its magic: Open must still refuse it cleanly.
            ZFileReader.Open(source).Dispose();
            throw new InvalidOperationException("Open accepted a file IsZFile rejected");
        }

        using var zfile = ZFileReader.Open(source);
        if (zfile.BlockCount <= MaxVerifiedBlocks)
        {
            zfile.VerifyAllBlocks();
        }

        // Unaligned reads at both ends and in the middle, going through the partial-block cache and the window path.
        var buffer = new byte[ProbeLength];
        foreach (var offset in new[] { 0L, zfile.Size / 2 - 1000, zfile.Size - ProbeLength + 7, zfile.Size - 3 })
        {
            var start = Math.Max(0, offset);
            var read = zfile.ReadAt(start, buffer);
            if (read != Math.Clamp(zfile.Size - start, 0, buffer.Length))
            {
                throw new InvalidOperationException($"short read {read} at {start} of {zfile.Size}");
            }
        }
    }
}

/// <summary>
/// The ZFile reader past its checksums: the input's header/trailer digests and jump-table CRC are
/// recomputed and block CRCs are not checked, so mutated fields and mutated compressed data reach the
/// field validation and the LZ4/zstd decoders instead of stopping at a digest mismatch.
/// </summary>
public sealed class ZFileChecksumsRepairedTarget : IFuzzTarget
{
    private const int ProbeLength = 1 << 20;

    public string Name => "zfile-repaired";

    public void Run(ReadOnlySpan<byte> input)
    {
        var file = input.ToArray();
        if (file.Length >= 1024 && ZFileHeader.TryRead(file, out var header) && ZFileHeader.TryRead(file.AsSpan(file.Length - 512), out var trailer))
        {
            Repair(file, file.Length - 512, trailer);
            Repair(file, 0, header);
        }

        using var zfile = ZFileReader.Open(new MemoryBlockSource(file), verifyChecksums: false);
        var buffer = new byte[ProbeLength];
        for (var offset = 0L; offset < Math.Min(zfile.Size, 8L * ProbeLength); offset += ProbeLength)
        {
            zfile.ReadAt(offset + (offset == 0 ? 0 : 333), buffer); // whole-block and partial-block paths
        }
    }

    /// <summary>Rewrites the block with a fresh index CRC (when the table lies in the file) and digest.</summary>
    private static void Repair(byte[] file, int at, ZFileHeader block)
    {
        var tableBytes = block.IndexSize * 4;
        if (block.IndexOffset <= (ulong)file.Length && tableBytes <= (ulong)file.Length - block.IndexOffset)
        {
            block = block with { IndexCrc = Crc32C.Compute(0, file.AsSpan((int)block.IndexOffset, (int)tableBytes)) };
        }

        block.Write(file.AsSpan(at, 512));
    }
}

/// <summary>overlaybd's tar envelope around a layer blob: detection and the payload window.</summary>
public sealed class TarEnvelopeTarget : IFuzzTarget
{
    public string Name => "zfile-tar";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var blob = new MemoryBlockSource(input.ToArray());
        if (!TarEnvelope.TryOpen(blob, out var payload))
        {
            return;
        }

        using (payload)
        {
            if (payload.Start is not (TarEnvelope.UstarPayloadOffset or TarEnvelope.PaxPayloadOffset) || payload.Start + payload.Size > blob.Size)
            {
                throw new InvalidOperationException($"payload window [{payload.Start}, +{payload.Size}) is impossible for a {blob.Size}-byte blob");
            }

            var data = new byte[payload.Size];
            payload.ReadExactlyAt(0, data);

            // Whatever we open, we must write back in overlaybd's shape and open again to the same payload.
            using var envelope = new MemoryStream();
            TarEnvelope.Write(envelope, payload);
            using var again = new MemoryBlockSource(envelope.ToArray());
            if (!TarEnvelope.TryOpen(again, out var reopened) || !Read(reopened).AsSpan().SequenceEqual(data))
            {
                throw new InvalidOperationException("the envelope we wrote does not open to the same payload");
            }
        }
    }

    private static byte[] Read(BlockSource source)
    {
        var data = new byte[source.Size];
        source.ReadExactlyAt(0, data);
        return data;
    }
}

/// <summary>Differential: any bytes compressed by our writer (both codecs, several block sizes) read back identically.</summary>
public sealed class ZFileRoundTripTarget : IFuzzTarget
{
    public string Name => "zfile-roundtrip";

    public void Run(ReadOnlySpan<byte> input)
    {
        var data = input.ToArray();
        var algorithm = data.Length % 2 == 0 ? ZFileAlgorithm.Lz4 : ZFileAlgorithm.Zstd;
        var blockSize = 4096 << (data.Length % 4); // 4..32 KiB: never over overlaybd's 64 KiB read limit
        using var output = new MemoryStream();
        ZFileWriter.Write(new MemoryBlockSource(data), output, new ZFileWriterOptions { Algorithm = algorithm, BlockSize = blockSize, OverwriteHeader = data.Length % 3 == 0 });
        using var zfile = ZFileReader.Open(new MemoryBlockSource(output.ToArray()));
        var back = new byte[zfile.Size];
        zfile.ReadExactlyAt(0, back);
        if (!back.AsSpan().SequenceEqual(data))
        {
            throw new InvalidOperationException($"{algorithm} {blockSize}-byte blocks did not round-trip {data.Length} bytes");
        }
    }

    public bool IsExpected(Exception exception) => false; // the writer accepts any bytes at these block sizes
}
