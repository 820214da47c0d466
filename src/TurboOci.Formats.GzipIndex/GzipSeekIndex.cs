using System.Buffers;
using TurboOci.Storage;
using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// A parsed and validated gzip index (<c>gzip.meta</c>): header, entries, and on-demand access to
/// each entry's 32 KiB window. Applies every check overlaybd's reader applies (§4.5) plus bounds
/// on every entry, so a damaged index fails here with a clear error instead of decoding garbage.
/// </summary>
public sealed class GzipSeekIndex
{
    private const string Format = GzipIndexHeader.FormatName;

    /// <summary>The largest entry array we accept (29 bytes each): 16 M entries, a 16 TiB layer at 1 MiB spans.</summary>
    public const long MaxEntries = 16L << 20;

    private readonly BlockSource _source;
    private readonly IZlibBlockCodec _codec;
    private readonly long[] _dePositions;

    private GzipSeekIndex(BlockSource source, IZlibBlockCodec codec, GzipIndexHeader header, GzipIndexEntry[] entries, byte[] entryArray)
    {
        _source = source;
        _codec = codec;
        Header = header;
        Entries = entries;
        EntryArray = entryArray;
        _dePositions = entries.Select(e => e.DePos).ToArray();
    }

    public GzipIndexHeader Header { get; }

    public IReadOnlyList<GzipIndexEntry> Entries { get; }

    /// <summary>The uncompressed entry array (index_num × 29 bytes), which span digests are bound to.</summary>
    public ReadOnlyMemory<byte> EntryArray { get; }

    /// <summary>Size of the uncompressed stream (all members when the index says so).</summary>
    public long UncompressedSize => Header.UncompressFileSize;

    /// <summary>Size of the gzip blob the index belongs to.</summary>
    public long CompressedSize => Header.GzipFileSize;

    /// <summary>Reads and validates an index. The source must stay open while windows are read.</summary>
    public static GzipSeekIndex Load(BlockSource source, IZlibBlockCodec codec)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(codec);
        var fileSize = source.Size;
        Span<byte> headerBytes = stackalloc byte[GzipIndexHeader.Size];
        if (fileSize < GzipIndexHeader.Size)
        {
            TurboOciFormatException.Throw(Format, "header", 0, $"index file is {fileSize} bytes, shorter than the {GzipIndexHeader.Size}-byte header");
        }

        source.ReadExactlyAt(0, headerBytes);
        var header = GzipIndexHeader.Read(headerBytes);
        CheckHeaderSizes(header, fileSize);

        var entryBytes = checked((int)(header.IndexNum * GzipIndexHeader.EntrySize));
        var area = ArrayPool<byte>.Shared.Rent((int)header.IndexAreaLen);
        var entryArray = new byte[entryBytes];
        try
        {
            source.ReadExactlyAt(header.IndexStart, area.AsSpan(0, (int)header.IndexAreaLen));
            if (header.DictCompressAlgo == GzipIndexHeader.AlgoZlib)
            {
                var got = codec.TryDecompress(area.AsSpan(0, (int)header.IndexAreaLen), entryArray);
                if (got != entryBytes)
                {
                    TurboOciFormatException.Throw(Format, "entry area", header.IndexStart,
                        $"the zlib-compressed entry area does not decompress to exactly {header.IndexNum} × {GzipIndexHeader.EntrySize} bytes (corrupt or wrong length)");
                }
            }
            else
            {
                area.AsSpan(0, entryBytes).CopyTo(entryArray);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(area);
        }

        var entries = new GzipIndexEntry[header.IndexNum];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = GzipIndexEntry.Read(entryArray.AsSpan(i * GzipIndexHeader.EntrySize));
            CheckEntry(header, entries, i);
        }

        return new GzipSeekIndex(source, codec, header, entries, entryArray);
    }

    /// <summary>Index of the entry to start from for uncompressed <paramref name="offset"/>: the last one with de_pos ≤ offset (overlaybd's upper-bound rule).</summary>
    public int FindEntry(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var index = Array.BinarySearch(_dePositions, offset);
        if (index >= 0)
        {
            // Several entries may share a de_pos (empty blocks, empty members): take the last.
            while (index + 1 < _dePositions.Length && _dePositions[index + 1] == offset)
            {
                index++;
            }

            return index;
        }

        return Math.Max(0, ~index - 1);
    }

    /// <summary>Uncompressed length of span <paramref name="index"/>: from its entry to the next (or the end).</summary>
    public long SpanLength(int index) =>
        (index + 1 < Entries.Count ? Entries[index + 1].DePos : UncompressedSize) - Entries[index].DePos;

    /// <summary>The compressed bytes span <paramref name="index"/> decodes from: [read start, next entry's en_pos) or to the blob's end.</summary>
    public (long Start, long End) CompressedRange(int index) =>
        (Entries[index].ReadStart, index + 1 < Entries.Count ? Entries[index + 1].EnPos : CompressedSize);

    /// <summary>Loads the 32 KiB window of entry <paramref name="index"/> into <paramref name="window"/>.</summary>
    public void ReadWindow(int index, Span<byte> window)
    {
        var entry = Entries[index];
        var stored = ArrayPool<byte>.Shared.Rent((int)entry.WinLen);
        try
        {
            _source.ReadExactlyAt(entry.WinPos, stored.AsSpan(0, (int)entry.WinLen));
            if (Header.DictCompressAlgo == GzipIndexHeader.AlgoNone)
            {
                stored.AsSpan(0, GzipIndexHeader.WindowSize).CopyTo(window);
                return;
            }

            if (_codec.TryDecompress(stored.AsSpan(0, (int)entry.WinLen), window[..GzipIndexHeader.WindowSize]) != GzipIndexHeader.WindowSize)
            {
                TurboOciFormatException.Throw(Format, $"entry[{index}].window", entry.WinPos,
                    "the zlib-compressed window is corrupt or does not hold exactly 32768 bytes");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
        }
    }

    private static void CheckHeaderSizes(GzipIndexHeader header, long fileSize)
    {
        if (header.IndexFileSize != fileSize)
        {
            TurboOciFormatException.Throw(Format, "header.index_file_size", GzipIndexHeader.IndexFileSizeOffset,
                $"says {header.IndexFileSize} bytes but the index file is {fileSize}: truncated or wrong index");
        }

        if (header.IndexStart < GzipIndexHeader.Size || header.IndexAreaLen < 0 || header.IndexStart > fileSize
            || header.IndexAreaLen != fileSize - header.IndexStart)
        {
            TurboOciFormatException.Throw(Format, "header.index_start", GzipIndexHeader.IndexStartOffset,
                $"entry area [{header.IndexStart}, +{header.IndexAreaLen}) does not end the {fileSize}-byte file");
        }

        if (header.IndexNum < 1 || header.IndexNum > MaxEntries || header.IndexNum > header.IndexStart - GzipIndexHeader.Size + 1)
        {
            TurboOciFormatException.Throw(Format, "header.index_num", GzipIndexHeader.IndexNumOffset,
                $"{header.IndexNum} entries is impossible for a {fileSize}-byte index");
        }

        var entryBytes = header.IndexNum * GzipIndexHeader.EntrySize;
        var maxArea = header.DictCompressAlgo == GzipIndexHeader.AlgoZlib ? ZlibBound(entryBytes) : entryBytes;
        if (header.DictCompressAlgo == GzipIndexHeader.AlgoNone ? header.IndexAreaLen != entryBytes : header.IndexAreaLen > maxArea || header.IndexAreaLen < 8)
        {
            TurboOciFormatException.Throw(Format, "header.index_area_len", GzipIndexHeader.IndexAreaLenOffset,
                $"entry area of {header.IndexAreaLen} bytes cannot hold {header.IndexNum} entries");
        }

        if (header.GzipFileSize < 18 || header.UncompressFileSize < 0)
        {
            TurboOciFormatException.Throw(Format, "header.gzip_file_size", GzipIndexHeader.GzipFileSizeOffset,
                $"sizes gzip {header.GzipFileSize} / uncompressed {header.UncompressFileSize} are impossible");
        }
    }

    private static void CheckEntry(GzipIndexHeader header, GzipIndexEntry[] entries, int i)
    {
        var e = entries[i];
        var offset = header.IndexStart;
        string? problem = null;
        if (i == 0 && e.DePos != 0)
        {
            problem = "the first entry must be at uncompressed offset 0";
        }
        else if (e.DePos < 0 || e.DePos > header.UncompressFileSize)
        {
            problem = $"de_pos {e.DePos} is outside the uncompressed stream (0..{header.UncompressFileSize})";
        }
        else if (e.Bits > 7)
        {
            problem = $"bits {e.Bits} > 7";
        }
        else if (e.EnPos < 1 || e.EnPos > header.GzipFileSize)
        {
            problem = $"en_pos {e.EnPos} is outside the {header.GzipFileSize}-byte gzip blob";
        }
        else if (i > 0 && (e.DePos < entries[i - 1].DePos || e.BitPosition < entries[i - 1].BitPosition))
        {
            problem = "entries are not in stream order";
        }
        else if (e.WinPos < GzipIndexHeader.Size || e.WinLen > header.IndexStart || e.WinPos > header.IndexStart - e.WinLen)
        {
            problem = $"window [{e.WinPos}, +{e.WinLen}) is outside the window area [{GzipIndexHeader.Size}, {header.IndexStart})";
        }
        else if (header.DictCompressAlgo == GzipIndexHeader.AlgoNone ? e.WinLen != GzipIndexHeader.WindowSize : e.WinLen > ZlibBound(GzipIndexHeader.WindowSize) || e.WinLen < 8)
        {
            problem = $"window length {e.WinLen} is impossible";
        }

        if (problem is not null)
        {
            TurboOciFormatException.Throw(Format, $"entry[{i}]", offset, problem);
        }
    }

    /// <summary>zlib's compressBound: no level-0..9 zlib stream of <paramref name="length"/> bytes is longer.</summary>
    internal static long ZlibBound(long length) => length + (length >> 12) + (length >> 14) + (length >> 25) + 13;
}
