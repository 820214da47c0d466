using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using TurboOci.Storage;

namespace TurboOci.Formats.ZFile;

/// <summary>
/// The uncompressed view of a ZFile: read-only, thread-safe random reads of any offset and length.
/// </summary>
/// <remarks>
/// <para>Open follows overlaybd's <c>load_jump_table</c>: header magics and header bit, header digest
/// when its digest bit is set, then the index fields from the header when it was overwritten (bit 3),
/// else from the trailer. Old writers left garbage in reserved fields and high flag bits (the stock
/// base layer), so only the documented bits and fields are looked at.</para>
/// <para>Stricter than overlaybd where that only refuses damaged files: the trailer's digest is checked
/// when its digest bit is set, the block count must match the original size, and every jump-table
/// entry must lie between 5 bytes and the codec's compress bound + 4 and inside the block area.
/// Unlike overlaybd, a stored block may be longer than 64 KiB, so <c>input.lz4-bs64.zfile</c>
/// (which overlaybd wrote but cannot read) reads fine.</para>
/// <para>Every read checks the block CRC-32C (seed 100007) when the file has them and
/// <c>verifyChecksums</c> was true; a mismatch or undecodable block throws
/// <see cref="TurboOciFormatException"/>. A small cache of decompressed blocks makes small
/// sequential reads decompress each block once.</para>
/// <para>The reader does not own the source: the caller disposes it after the reader.</para>
/// </remarks>
public sealed class ZFileReader : BlockSource
{
    public const string FormatName = "ZFile";

    /// <summary>overlaybd's MAX_ZFILE_INDEX_SIZE: the most blocks a ZFile may declare.</summary>
    public const ulong MaxBlockCount = 1_000_000_000;

    /// <summary>The CRC-32C seed of block checksums (overlaybd's "NOI_WELL_KNOWN_PRIME").</summary>
    public const uint BlockCrcSeed = 100007;

    public const int MinBlockSize = 512;
    public const int MaxBlockSize = 64 * 1024;

    /// <summary>How much compressed data one positional read fetches for multi-block requests.</summary>
    private const int ReadWindowBytes = 1 << 20;

    private const int CacheSlots = 16;

    /// <summary>Reads smaller than this decode on the calling thread: handing work to other threads costs more.</summary>
    private const int ParallelMinBytes = 128 * 1024;

    private readonly BlockSource _source;
    private readonly long _baseOffset;
    private readonly BlockOffsetTable _blockStarts;
    private readonly int _blockSize;
    private readonly long _size;
    private readonly bool _checkCrc;
    private readonly int _maxStoredLength;
    private readonly CacheSlot[] _cache;
    private int _decodeParallelism = Environment.ProcessorCount;

    private ZFileReader(BlockSource source, long baseOffset, ZFileHeader header, ZFileHeader? trailer, BlockOffsetTable blockStarts, bool checkCrc)
    {
        _source = source;
        _baseOffset = baseOffset;
        Header = header;
        Trailer = trailer;
        Effective = header.IsHeaderOverwrite ? header : trailer!.Value;
        _blockStarts = blockStarts;
        _blockSize = (int)Effective.BlockSize;
        _size = (long)Effective.OriginalFileSize;
        Algorithm = (ZFileAlgorithm)Effective.Algorithm;
        _checkCrc = checkCrc && HasBlockChecksums;
        _maxStoredLength = ZFileCodec.MaxCompressedLength(Algorithm, _blockSize) + (HasBlockChecksums ? 4 : 0);
        _cache = new CacheSlot[CacheSlots];
        for (var i = 0; i < _cache.Length; i++)
        {
            _cache[i] = new CacheSlot(_blockSize);
        }
    }

    /// <summary>The uncompressed size (original_file_size).</summary>
    public override long Size => _size;

    public ZFileAlgorithm Algorithm { get; }

    /// <summary>Uncompressed bytes per block (the last block may be shorter).</summary>
    public int BlockSize => _blockSize;

    /// <summary>The header block at offset 0, as stored.</summary>
    public ZFileHeader Header { get; }

    /// <summary>The trailer, when it was read (not when the header was overwritten with the final fields).</summary>
    public ZFileHeader? Trailer { get; }

    /// <summary>The block whose index fields are used: the overwritten header, else the trailer.</summary>
    public ZFileHeader Effective { get; }

    public int BlockCount => _blockStarts.BlockCount;

    /// <summary>Whether each stored block ends with a CRC-32C.</summary>
    public bool HasBlockChecksums => Effective.Verify != 0;

    /// <summary>Whether reads check those CRCs.</summary>
    public bool ChecksBlockChecksums => _checkCrc;

    /// <summary>Size of the compressed file.</summary>
    public long CompressedSize => _source.Size;

    /// <summary>Byte offset (in the compressed file) where block <paramref name="index"/> is stored.</summary>
    public long GetStoredBlockOffset(int index) => _blockStarts[index];

    /// <summary>Stored length of block <paramref name="index"/>, CRC included.</summary>
    public int GetStoredBlockLength(int index) => (int)(_blockStarts[index + 1] - _blockStarts[index]);

    /// <summary>Whether the source starts with a ZFile header (magics and header bit). Never throws for bad data.</summary>
    public static bool IsZFile(BlockSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Size < ZFileHeaderLayout.BlockSize)
        {
            return false;
        }

        Span<byte> block = stackalloc byte[ZFileHeaderLayout.BlockSize];
        return source.ReadAt(0, block) == block.Length
            && ZFileHeader.TryRead(block, out var header)
            && header.IsHeader;
    }

    /// <summary>
    /// Opens a ZFile. The reader does not take ownership of <paramref name="source"/>: dispose the
    /// source yourself after the reader. <paramref name="verifyChecksums"/> = false skips the
    /// per-block CRC on reads (the header digest and jump-table CRC are always checked).
    /// </summary>
    /// <exception cref="TurboOciFormatException">The source is not a well-formed ZFile.</exception>
    public static ZFileReader Open(BlockSource source, bool verifyChecksums = true)
    {
        ArgumentNullException.ThrowIfNull(source);
        var baseOffset = AbsoluteBase(source);
        var fileSize = source.Size;
        Span<byte> block = stackalloc byte[ZFileHeaderLayout.BlockSize];
        if (fileSize < ZFileHeaderLayout.BlockSize)
        {
            Fail("header", baseOffset, $"the file is {fileSize} bytes, shorter than the 512-byte ZFile header");
        }

        source.ReadExactlyAt(0, block);
        if (!ZFileHeader.TryRead(block, out var header))
        {
            Fail("header.magic", baseOffset, "not a ZFile: magic mismatch" + DescribeOtherFormat(block));
        }

        if (!header.IsHeader)
        {
            Fail("header.flags", baseOffset + ZFileHeaderLayout.Flags, $"flags 0x{(ulong)header.Flags:x} lack the header bit (0x1): this looks like a trailer");
        }

        CheckDigest(header, block, baseOffset, "header");

        ZFileHeader? trailer = null;
        var effectiveOffset = baseOffset;
        if (!header.IsHeaderOverwrite)
        {
            if (!header.IsDataFile)
            {
                Fail("header.flags", baseOffset + ZFileHeaderLayout.Flags, $"flags 0x{(ulong)header.Flags:x} lack the data-file bit (0x2)");
            }

            if (fileSize < 2 * ZFileHeaderLayout.BlockSize)
            {
                Fail("trailer", baseOffset + fileSize, $"the file is {fileSize} bytes: too short for a 512-byte header and a 512-byte trailer (truncated?)");
            }

            var trailerOffset = fileSize - ZFileHeaderLayout.BlockSize;
            source.ReadExactlyAt(trailerOffset, block);
            if (!ZFileHeader.TryRead(block, out var t))
            {
                Fail("trailer.magic", baseOffset + trailerOffset, "no ZFile trailer at the end of the file (truncated or appended to?)");
            }

            if (t.IsHeader || !t.IsDataFile || !t.IsSealed)
            {
                Fail("trailer.flags", baseOffset + trailerOffset + ZFileHeaderLayout.Flags,
                    $"flags 0x{(ulong)t.Flags:x}: a trailer needs the header bit clear and the data-file (0x2) and sealed (0x4) bits set");
            }

            CheckDigest(t, block, baseOffset + trailerOffset, "trailer");
            trailer = t;
            effectiveOffset = baseOffset + trailerOffset;
        }

        var effective = trailer ?? header;
        var blockName = trailer is null ? "header" : "trailer";
        ValidateOptions(effective, effectiveOffset, blockName);

        var blockSize = (int)effective.BlockSize;
        var expectedBlocks = effective.OriginalFileSize / (ulong)blockSize + (effective.OriginalFileSize % (ulong)blockSize == 0 ? 0UL : 1UL);
        if (effective.IndexSize > MaxBlockCount)
        {
            Fail($"{blockName}.index_size", effectiveOffset + ZFileHeaderLayout.IndexSize, $"{effective.IndexSize} blocks exceeds the limit of {MaxBlockCount}");
        }

        if (effective.IndexSize != expectedBlocks)
        {
            Fail($"{blockName}.index_size", effectiveOffset + ZFileHeaderLayout.IndexSize,
                $"{effective.IndexSize} blocks, but original_file_size {effective.OriginalFileSize} in {blockSize}-byte blocks needs {expectedBlocks}");
        }

        var blockCount = (int)effective.IndexSize;
        var dataStart = (ulong)ZFileHeaderLayout.BlockSize + effective.DictSize;
        var tableBytes = effective.IndexSize * 4;
        var tableLimit = (ulong)(fileSize - ZFileHeaderLayout.BlockSize);
        if (effective.IndexOffset < dataStart || effective.IndexOffset > tableLimit || tableBytes > tableLimit - effective.IndexOffset)
        {
            Fail($"{blockName}.index_offset", effectiveOffset + ZFileHeaderLayout.IndexOffset,
                $"a jump table of {tableBytes} bytes at {effective.IndexOffset} does not fit between the header and the trailer (file size {fileSize})");
        }

        // Safe to allocate: the table was just shown to lie inside the file.
        var table = new byte[checked((int)tableBytes)];
        var tableOffset = (long)effective.IndexOffset;
        source.ReadExactlyAt(tableOffset, table);
        if (effective.IsDigestEnabled)
        {
            var crc = Crc32C.Compute(0, table);
            if (crc != effective.IndexCrc)
            {
                Fail($"{blockName}.index_crc", effectiveOffset + ZFileHeaderLayout.IndexCrc,
                    $"jump table CRC-32C is 0x{crc:x8}, the {blockName} says 0x{effective.IndexCrc:x8}");
            }
        }

        var verify = effective.Verify != 0;
        var minStored = verify ? 5 : 1;
        var maxStored = ZFileCodec.MaxCompressedLength((ZFileAlgorithm)effective.Algorithm, blockSize) + (verify ? 4 : 0);
        var lengths = new uint[blockCount];
        var position = (long)dataStart;
        for (var i = 0; i < blockCount; i++)
        {
            var stored = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(i * 4));
            if (stored < minStored || stored > maxStored)
            {
                Fail($"jump_table[{i}]", baseOffset + tableOffset + (i * 4L),
                    $"stored block length {stored} is outside [{minStored}, {maxStored}] for {blockSize}-byte {(ZFileAlgorithm)effective.Algorithm} blocks");
            }

            position += stored;
            if (position > tableOffset)
            {
                Fail($"jump_table[{i}]", baseOffset + tableOffset + (i * 4L),
                    $"blocks 0..{i} end at {position}, past the jump table at {tableOffset}");
            }

            lengths[i] = stored;
        }

        var starts = new BlockOffsetTable((long)dataStart, lengths);
        return new ZFileReader(source, baseOffset, header, trailer, starts, verifyChecksums);
    }

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        if (length == 0)
        {
            return 0;
        }

        var output = destination[..length];
        var end = offset + length;
        byte[]? window = null;
        try
        {
            var position = offset;
            while (position < end)
            {
                var index = position / _blockSize;
                var inBlock = (int)(position % _blockSize);
                var take = (int)Math.Min(BlockLength(index) - inBlock, end - position);
                var target = output[(int)(position - offset)..];
                if (inBlock != 0 || take != BlockLength(index))
                {
                    ReadPartialBlock(index, inBlock, target[..take]);
                    position += take;
                    continue;
                }

                // A run of whole blocks: fetch as many as one window holds with one read, decode them straight into the output.
                var lastWhole = end >= _size ? BlockCount - 1 : (end / _blockSize) - 1;
                window ??= ArrayPool<byte>.Shared.Rent(Math.Max(ReadWindowBytes, _maxStoredLength));
                var windowEnd = FillWindow(window, index, lastWhole);
                position += DecodeWholeBlocks(index, windowEnd, window, target);
            }
        }
        finally
        {
            if (window is not null)
            {
                ArrayPool<byte>.Shared.Return(window);
            }
        }

        return length;
    }

    /// <summary>
    /// How many threads may decode the blocks of one large read (default: every core). ZFile blocks are
    /// independent, so a 1 MiB read of 64 KiB zstd blocks decodes on all cores at once; 1 decodes inline.
    /// </summary>
    public int DecodeParallelism
    {
        get => _decodeParallelism;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _decodeParallelism = value;
        }
    }

    /// <summary>Decompresses every block once and checks its CRC (even when reads skip CRCs), for <c>zfile verify</c>.</summary>
    /// <param name="progress">Called with the number of uncompressed bytes checked so far.</param>
    public void VerifyAllBlocks(Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var window = ArrayPool<byte>.Shared.Rent(Math.Max(ReadWindowBytes, _maxStoredLength));
        var output = ArrayPool<byte>.Shared.Rent(Math.Max(ReadWindowBytes, _blockSize));
        var outputBlocks = output.Length / _blockSize;
        try
        {
            for (long index = 0; index < BlockCount;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var windowEnd = FillWindow(window, index, Math.Min(BlockCount, index + outputBlocks) - 1);
                DecodeWholeBlocks(index, windowEnd, window, output, forceCrc: true);
                index = windowEnd;
                progress?.Invoke(Math.Min(_size, index * _blockSize));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(window);
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    private int BlockLength(long index) => (int)Math.Min(_blockSize, _size - (index * _blockSize));

    private int StoredLength(long index) => (int)(_blockStarts[index + 1] - _blockStarts[index]);

    /// <summary>Reads the stored bytes of blocks first.. into the window, as many as fit, up to last; returns the end block.</summary>
    private long FillWindow(byte[] window, long first, long last)
    {
        var endBlock = first + 1;
        while (endBlock <= last && _blockStarts[endBlock + 1] - _blockStarts[first] <= window.Length)
        {
            endBlock++;
        }

        var bytes = (int)(_blockStarts[endBlock] - _blockStarts[first]);
        var read = _source.ReadAt(_blockStarts[first], window.AsSpan(0, bytes));
        if (read != bytes)
        {
            Fail($"block[{first}]", _baseOffset + _blockStarts[first] + read, $"the file ends inside the compressed blocks (wanted {bytes} bytes, got {read})");
        }

        return endBlock;
    }

    /// <summary>Decodes blocks [first, endBlock), all in the window, into target; returns the bytes produced.</summary>
    private int DecodeWholeBlocks(long first, long endBlock, byte[] window, Span<byte> target, bool forceCrc = false)
    {
        var count = (int)(endBlock - first);
        var total = (int)(Math.Min(_size, endBlock * _blockSize) - (first * _blockSize));
        var workers = Math.Min(_decodeParallelism, count);
        if (workers < 2 || total < ParallelMinBytes)
        {
            for (var index = first; index < endBlock; index++)
            {
                var start = (int)(_blockStarts[index] - _blockStarts[first]);
                DecodeBlock(index, window.AsSpan(start, StoredLength(index)), target.Slice((int)((index - first) * _blockSize), BlockLength(index)), forceCrc);
            }

            return total;
        }

        // Spans cannot cross threads: decode into a pooled staging buffer, then one copy (~1% of the decode time).
        var staging = ArrayPool<byte>.Shared.Rent(total);
        var errors = new Exception?[workers];
        try
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
            {
                try
                {
                    var from = first + (count * (long)worker / workers);
                    var to = first + (count * (long)(worker + 1) / workers);
                    for (var index = from; index < to; index++)
                    {
                        var start = (int)(_blockStarts[index] - _blockStarts[first]);
                        DecodeBlock(index, window.AsSpan(start, StoredLength(index)), staging.AsSpan((int)((index - first) * _blockSize), BlockLength(index)), forceCrc);
                    }
                }
                catch (Exception e)
                {
                    errors[worker] = e;
                }
            });

            // The error of the lowest block wins, so a damaged file fails the same way on any core count.
            if (errors.FirstOrDefault(e => e is not null) is { } error)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
            }

            staging.AsSpan(0, total).CopyTo(target);
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(staging);
        }
    }

    private void ReadPartialBlock(long index, int inBlock, Span<byte> target)
    {
        var slot = _cache[index % CacheSlots];
        lock (slot)
        {
            if (slot.Index != index)
            {
                slot.Index = -1;
                var stored = StoredLength(index);
                var compressed = ArrayPool<byte>.Shared.Rent(stored);
                try
                {
                    var read = _source.ReadAt(_blockStarts[index], compressed.AsSpan(0, stored));
                    if (read != stored)
                    {
                        Fail($"block[{index}]", _baseOffset + _blockStarts[index] + read, $"the file ends inside the block (wanted {stored} bytes, got {read})");
                    }

                    DecodeBlock(index, compressed.AsSpan(0, stored), slot.Data.AsSpan(0, BlockLength(index)));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(compressed);
                }

                slot.Index = index;
            }

            slot.Data.AsSpan(inBlock, target.Length).CopyTo(target);
        }
    }

    private void DecodeBlock(long index, ReadOnlySpan<byte> stored, Span<byte> output, bool forceCrc = false)
    {
        var compressed = stored;
        if (HasBlockChecksums)
        {
            compressed = stored[..^4];
            if (_checkCrc || forceCrc)
            {
                var expected = BinaryPrimitives.ReadUInt32LittleEndian(stored[^4..]);
                var actual = Crc32C.Compute(BlockCrcSeed, compressed);
                if (actual != expected)
                {
                    Fail($"block[{index}].crc", _baseOffset + _blockStarts[index + 1] - 4,
                        $"CRC-32C of the {compressed.Length} compressed bytes is 0x{actual:x8}, stored 0x{expected:x8}");
                }
            }
        }

        var written = ZFileCodec.Decompress(Algorithm, compressed, output);
        if (written != output.Length)
        {
            Fail($"block[{index}]", _baseOffset + _blockStarts[index],
                written < 0
                    ? $"{compressed.Length} bytes are not a valid {Algorithm} block of {output.Length} bytes"
                    : $"decompressed to {written} bytes, expected {output.Length}");
        }
    }

    private static void ValidateOptions(ZFileHeader effective, long offset, string name)
    {
        if ((effective.Flags & ZFileFlags.IndexCompressed) != 0)
        {
            Fail($"{name}.flags", offset + ZFileHeaderLayout.Flags, "index compression (bit 5) is not supported (overlaybd never writes it)");
        }

        if (effective.Algorithm is not ((byte)ZFileAlgorithm.Lz4 or (byte)ZFileAlgorithm.Zstd))
        {
            Fail($"{name}.algo", offset + ZFileHeaderLayout.Algorithm,
                effective.Algorithm == 0 ? "algorithm 0 (mini-LZO) is declared by overlaybd but unsupported" : $"unknown algorithm {effective.Algorithm}");
        }

        if (effective.UseDict != 0 || effective.DictSize != 0)
        {
            Fail($"{name}.dict_size", offset + ZFileHeaderLayout.DictSize, $"dictionaries are not supported (use_dict {effective.UseDict}, dict_size {effective.DictSize})");
        }

        if (effective.BlockSize is < MinBlockSize or > MaxBlockSize || !BitOperations.IsPow2(effective.BlockSize))
        {
            Fail($"{name}.block_size", offset + ZFileHeaderLayout.BlockSizeField, $"block size {effective.BlockSize} is not a power of two in [{MinBlockSize}, {MaxBlockSize}]");
        }

        if (effective.Verify > 1)
        {
            Fail($"{name}.verify", offset + ZFileHeaderLayout.Verify, $"verify byte {effective.Verify} is neither 0 nor 1");
        }
    }

    private static void CheckDigest(ZFileHeader block, ReadOnlySpan<byte> bytes, long offset, string name)
    {
        if (!block.IsDigestEnabled)
        {
            return; // legacy writers: no digest, and overlaybd reads the file anyway
        }

        var digest = ZFileHeader.ComputeDigest(bytes);
        if (digest != block.Digest)
        {
            Fail($"{name}.digest", offset + ZFileHeaderLayout.Digest, $"CRC-32C of the 512-byte {name} is 0x{digest:x8}, stored 0x{block.Digest:x8}");
        }
    }

    private static string DescribeOtherFormat(ReadOnlySpan<byte> block)
    {
        if (block.StartsWith("LSMT"u8))
        {
            return " (this is an uncompressed LSMT layer)";
        }

        if (block.Length >= 263 && block.Slice(257, 5).SequenceEqual("ustar"u8))
        {
            return " (this is a tar archive: unwrap it with TarEnvelope first)";
        }

        if (block is [0x1F, 0x8B, ..])
        {
            return " (this is gzip data)";
        }

        return block is [0x28, 0xB5, 0x2F, 0xFD, ..] ? " (this is a zstd frame, not a ZFile)" : string.Empty;
    }

    /// <summary>Where the source starts in its outermost file, so error offsets are absolute for tar-wrapped blobs.</summary>
    private static long AbsoluteBase(BlockSource source)
    {
        var offset = 0L;
        while (source is SliceBlockSource slice)
        {
            offset += slice.Start;
            source = slice.Inner;
        }

        return offset;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string field, long offset, string problem) =>
        TurboOciFormatException.Throw(FormatName, field, offset, problem);

    /// <summary>One decompressed block, guarded by its own lock.</summary>
    private sealed class CacheSlot(int blockSize)
    {
        private byte[]? _data;

        public long Index { get; set; } = -1;

        /// <summary>Allocated on first use: a stack of many layers opens many readers that may never read.</summary>
        public byte[] Data => _data ??= new byte[blockSize];
    }
}
