using System.Buffers.Binary;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>
/// gzip.meta parser and the reader behind it. Input: u32 LE index length, the index, then the gzip
/// blob it describes. Parses the index, loads every window, then reads the whole uncompressed
/// stream and a few ranges through it: anything but a TurboOciFormatException is a bug.
/// </summary>
public sealed class GzipIndexTarget : IFuzzTarget
{
    public string Name => "gzip-index";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
        {
            return;
        }

        var indexLength = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input), (uint)(input.Length - 4));
        var indexBytes = input.Slice(4, indexLength).ToArray();
        var blob = input[(4 + indexLength)..].ToArray();
        var index = GzipSeekIndex.Load(new MemoryBlockSource(indexBytes), SystemZlib.Instance);
        var window = new byte[GzipIndexHeader.WindowSize];
        for (var i = 0; i < index.Entries.Count; i++)
        {
            index.ReadWindow(i, window);
        }

        if (index.UncompressedSize > 64 << 20)
        {
            return; // A fuzzed size claim; reading it all would only test patience.
        }

        using var reader = new GzipIndexedSource(new MemoryBlockSource(blob), index, SystemZlib.Instance, options: new GzipReaderOptions { CacheBytes = 1 << 20 });
        var all = new byte[reader.Size];
        if (reader.ReadAt(0, all) != all.Length)
        {
            throw new InvalidOperationException("short read inside the stream");
        }

        var small = new byte[777];
        for (long offset = 0; offset < reader.Size; offset += 1 + (reader.Size / 7))
        {
            var read = reader.ReadAt(offset, small);
            if (!small.AsSpan(0, read).SequenceEqual(all.AsSpan((int)offset, read)))
            {
                throw new InvalidOperationException($"a ranged read at {offset} differs from the whole read");
            }
        }
    }
}

/// <summary>gzip.spans parser.</summary>
public sealed class GzipSpansTarget : IFuzzTarget
{
    public string Name => "gzip-spans";

    public void Run(ReadOnlySpan<byte> input)
    {
        var spans = GzipSpanDigests.Read(input);
        if (!spans.ToBytes().AsSpan().SequenceEqual(input))
        {
            throw new InvalidOperationException("a parsed spans file does not write back to the same bytes");
        }
    }
}

/// <summary>
/// Building an index from an untrusted gzip blob (the indexer's inflating stream: member headers and trailers
/// parsed by us, sparse windows, span digests, at overlaybd's smallest span). When the build succeeds, the index
/// must read back through <see cref="GzipIndexedSource"/> exactly the bytes the building stream handed out.
/// </summary>
public sealed class GzipIndexBuildTarget : IFuzzTarget
{
    public string Name => "gzip-index-build";

    public void Run(ReadOnlySpan<byte> input)
    {
        var blob = input.ToArray();
        using var indexOutput = new MemoryStream();
        var options = new GzipIndexOptions { Span = GzipIndexOptions.MinSpan, SpanDigests = true, SparseWindows = true };
        using var output = new MemoryStream();
        GzipIndexBuildResult built;
        using (var indexing = new GzipIndexingStream(new MemoryStream(blob), indexOutput, SystemZlib.Instance, SystemZlib.Instance, options))
        {
            var buffer = new byte[1 << 16];
            int read;
            while ((read = indexing.Read(buffer, 0, 1 + (int)(output.Length % buffer.Length))) > 0)
            {
                output.Write(buffer, 0, read);
                if (output.Length > 64 << 20)
                {
                    return; // A bomb: only patience would be tested from here.
                }
            }

            built = indexing.Complete();
        }

        var index = GzipSeekIndex.Load(new MemoryBlockSource(indexOutput.ToArray()), SystemZlib.Instance);
        using var reader = new GzipIndexedSource(new MemoryBlockSource(blob), index, SystemZlib.Instance, built.Spans);
        var all = new byte[reader.Size];
        if (reader.ReadAt(0, all) != all.Length || !all.AsSpan().SequenceEqual(output.GetBuffer().AsSpan(0, (int)output.Length)))
        {
            throw new InvalidOperationException("the built index reads back other bytes than the building stream gave");
        }

        // The indexer's own path inflates the blob in place (a mapped file): read the same way (the builder's 1 MiB
        // reads; sparse windows depend on where reads end), it must build the very same index as the stream.
        using var streamIndex = new MemoryStream();
        var fromStream = GzipIndexBuilder.Build(new MemoryStream(blob), streamIndex, SystemZlib.Instance, SystemZlib.Instance, options);
        using var viewIndex = new MemoryStream();
        var fromView = GzipIndexBuilder.Build(new BlobView(blob), viewIndex, SystemZlib.Instance, SystemZlib.Instance, options);
        if (!viewIndex.ToArray().AsSpan().SequenceEqual(streamIndex.ToArray()) || !fromView.Spans!.ToBytes().AsSpan().SequenceEqual(fromStream.Spans!.ToBytes()))
        {
            throw new InvalidOperationException("the blob read in place gives another index than the blob read as a stream");
        }
    }

    private sealed class BlobView(byte[] blob) : IByteView
    {
        public long Length => blob.Length;

        public ReadOnlySpan<byte> Slice(long offset, int length) => blob.AsSpan(checked((int)offset), length);
    }
}
