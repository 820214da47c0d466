using System.Buffers.Binary;
using System.Numerics;
using TurboOci.Storage;

namespace TurboOci.Formats.ZFile;

/// <summary>How <see cref="ZFileWriter"/> compresses.</summary>
public sealed record ZFileWriterOptions
{
    public ZFileAlgorithm Algorithm { get; init; } = ZFileAlgorithm.Lz4;

    /// <summary>Uncompressed bytes per block: a power of two from 4 KiB to 64 KiB (overlaybd's <c>--bs</c> range).</summary>
    public int BlockSize { get; init; } = 4096;

    /// <summary>
    /// Rewrite the header at the end with the final index fields (flags 0x1b), as <c>overlaybd-commit -z</c>
    /// does; needs a seekable output. Off, the header keeps flags 0x13 and zero index fields, as
    /// <c>overlaybd-zfile</c> writes it.
    /// </summary>
    public bool OverwriteHeader { get; init; }

    public const int MinBlockSize = 4 * 1024;
    public const int MaxBlockSize = 64 * 1024;

    internal void Validate()
    {
        if (Algorithm is not (ZFileAlgorithm.Lz4 or ZFileAlgorithm.Zstd))
        {
            throw new ArgumentOutOfRangeException(nameof(Algorithm), Algorithm, "ZFile algorithm must be Lz4 or Zstd");
        }

        if (BlockSize is < MinBlockSize or > MaxBlockSize || !BitOperations.IsPow2(BlockSize))
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, $"ZFile block size must be a power of two from {MinBlockSize} to {MaxBlockSize} bytes");
        }
    }
}

/// <summary>
/// Writes ZFiles byte-compatible with overlaybd: 512-byte header (flags 0x13, or 0x1b when
/// overwritten), blocks each followed by CRC-32C seed 100007, a u32 jump table of stored lengths,
/// and a trailer (flags 0x16) with digest and index CRC. Streaming, with memory bounded by one batch
/// of blocks plus the jump table (4 bytes per block).
/// </summary>
/// <remarks>
/// overlaybd's reader fetches compressed data through a 64 KiB buffer and cannot read a stored block
/// (compressed bytes + 4-byte CRC) longer than <see cref="MaxStoredBlockLength"/>. Only 64 KiB blocks of
/// incompressible data get there (LZ4 and zstd alike: neither can store 65,536 raw bytes in fewer than
/// 65,533). Rather than write a file overlaybd cannot read, the writer then throws
/// <see cref="NotSupportedException"/> naming the block; block sizes up to 32 KiB can never overflow.
/// </remarks>
public static class ZFileWriter
{
    /// <summary>The longest stored block (compressed + CRC) overlaybd's reader accepts: its MAX_READ_SIZE.</summary>
    public const int MaxStoredBlockLength = 64 * 1024;

    /// <summary>Compresses all of <paramref name="input"/> into <paramref name="output"/> (left open).</summary>
    public static void Write(BlockSource input, Stream output, ZFileWriterOptions options) =>
        Write(input, output, options, progress: null);

    /// <summary>Compresses <paramref name="input"/> from its current position to its end into <paramref name="output"/> (both left open).</summary>
    public static void Write(Stream input, Stream output, ZFileWriterOptions options) =>
        Write(input, output, options, progress: null);

    /// <summary>As <see cref="Write(BlockSource, Stream, ZFileWriterOptions)"/>, reporting uncompressed bytes done.</summary>
    public static void Write(BlockSource input, Stream output, ZFileWriterOptions options, Action<long>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var writer = new ZFileWriteStream(output, options, leaveOpen: true);
        var buffer = new byte[writer.BatchBytes];
        for (var offset = 0L; offset < input.Size;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = (int)Math.Min(buffer.Length, input.Size - offset);
            input.ReadExactlyAt(offset, buffer.AsSpan(0, chunk));
            writer.Write(buffer, 0, chunk);
            offset += chunk;
            progress?.Invoke(offset);
        }

        writer.Complete();
    }

    /// <summary>As <see cref="Write(Stream, Stream, ZFileWriterOptions)"/>, reporting uncompressed bytes done.</summary>
    public static void Write(Stream input, Stream output, ZFileWriterOptions options, Action<long>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var writer = new ZFileWriteStream(output, options, leaveOpen: true);
        var buffer = new byte[writer.BatchBytes];
        var total = 0L;
        int read;
        while ((read = input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            writer.Write(buffer, 0, read);
            total += read;
            progress?.Invoke(total);
        }

        writer.Complete();
    }

    /// <summary>
    /// A write-only stream that compresses what is written to it into a ZFile on <paramref name="output"/>:
    /// how a layer commit streams straight into a compressed blob. Dispose (or <see cref="ZFileWriteStream.Complete"/>)
    /// writes the jump table and trailer.
    /// </summary>
    public static ZFileWriteStream CreateStream(Stream output, ZFileWriterOptions options, bool leaveOpen = false) =>
        new(output, options, leaveOpen);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    internal static void WriteBlockTooLarge(long index, int blockSize, int stored, ZFileAlgorithm algorithm) =>
        throw new NotSupportedException(
            $"ZFile block {index} (uncompressed offset {index * blockSize}) of {blockSize} bytes does not compress: {algorithm} gives {stored - 4} bytes + 4-byte CRC = {stored}, " +
            $"more than the {MaxStoredBlockLength} bytes overlaybd's reader can fetch, so overlaybd could not read the file. Use a block size of 32 KiB or less.");

    /// <summary>The 512-byte header/trailer as overlaybd's <c>write_header_trailer</c> writes it.</summary>
    internal static void WriteHeaderBlock(Span<byte> block, ZFileWriterOptions options, ZFileFlags kind, ulong indexOffset, ulong blockCount, ulong originalSize, uint indexCrc) =>
        new ZFileHeader
        {
            Flags = kind | ZFileFlags.DataFile | ZFileFlags.DigestEnabled,
            IndexOffset = indexOffset,
            IndexSize = blockCount,
            OriginalFileSize = originalSize,
            IndexCrc = indexCrc,
            BlockSize = (uint)options.BlockSize,
            Algorithm = (byte)options.Algorithm,
            Verify = 1,
        }.Write(block);

    internal static void WriteLittleEndian(Span<byte> destination, IReadOnlyList<uint> values)
    {
        for (var i = 0; i < values.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(i * 4)..], values[i]);
        }
    }
}

/// <summary>
/// Compresses written bytes into a ZFile. Blocks of a batch are compressed in parallel and written in
/// order, so the output is identical whatever the core count. Not thread-safe (a stream).
/// </summary>
public sealed class ZFileWriteStream : Stream
{
    private const int TargetBatchBytes = 1 << 20;

    private readonly Stream _output;
    private readonly ZFileWriterOptions _options;
    private readonly bool _leaveOpen;
    private readonly long _headerPosition;
    private readonly byte[] _batch;
    private readonly byte[] _compressed;
    private readonly int[] _compressedLengths;
    private readonly int _slotSize;
    private readonly List<uint> _storedLengths = [];
    private int _batchFill;
    private long _originalSize;
    private long _dataEnd;
    private bool _completed;
    private bool _failed;

    internal ZFileWriteStream(Stream output, ZFileWriterOptions options, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!output.CanWrite)
        {
            throw new ArgumentException("the ZFile output stream is not writable", nameof(output));
        }

        if (options.OverwriteHeader && !output.CanSeek)
        {
            throw new ArgumentException("OverwriteHeader rewrites the header at the end and needs a seekable output", nameof(output));
        }

        _output = output;
        _options = options;
        _leaveOpen = leaveOpen;
        _headerPosition = output.CanSeek ? output.Position : 0;
        var blocksPerBatch = Math.Max(1, TargetBatchBytes / options.BlockSize);
        _batch = new byte[blocksPerBatch * options.BlockSize];
        _slotSize = ZFileCodec.MaxCompressedLength(options.Algorithm, options.BlockSize) + 4;
        _compressed = new byte[blocksPerBatch * _slotSize];
        _compressedLengths = new int[blocksPerBatch];

        Span<byte> header = stackalloc byte[ZFileHeaderLayout.BlockSize];
        ZFileWriter.WriteHeaderBlock(header, options, ZFileFlags.Header, 0, 0, 0, 0);
        _output.Write(header);
        _dataEnd = ZFileHeaderLayout.BlockSize;
    }

    /// <summary>How many uncompressed bytes one batch holds: the best write size.</summary>
    public int BatchBytes => _batch.Length;

    /// <summary>Uncompressed bytes written so far.</summary>
    public long OriginalSize => _originalSize;

    /// <summary>Blocks written to the output so far.</summary>
    public int BlockCount => _storedLengths.Count;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_completed;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _originalSize;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        while (!buffer.IsEmpty)
        {
            var take = Math.Min(buffer.Length, _batch.Length - _batchFill);
            buffer[..take].CopyTo(_batch.AsSpan(_batchFill));
            _batchFill += take;
            _originalSize += take;
            buffer = buffer[take..];
            if (_batchFill == _batch.Length)
            {
                FlushBatch();
            }
        }
    }

    /// <summary>Compresses what is buffered, then writes the jump table, the trailer and (if asked) the overwritten header.</summary>
    public void Complete()
    {
        if (_completed)
        {
            return;
        }

        if (_failed)
        {
            throw new InvalidOperationException("an earlier write failed, so this ZFile cannot be completed");
        }

        FlushBatch();
        var table = new byte[checked(_storedLengths.Count * 4)];
        ZFileWriter.WriteLittleEndian(table, _storedLengths);
        _output.Write(table);
        var indexCrc = Crc32C.Compute(0, table);
        var indexOffset = (ulong)_dataEnd;
        var blocks = (ulong)_storedLengths.Count;
        Span<byte> block = stackalloc byte[ZFileHeaderLayout.BlockSize];
        ZFileWriter.WriteHeaderBlock(block, _options, ZFileFlags.Sealed, indexOffset, blocks, (ulong)_originalSize, indexCrc);
        _output.Write(block);
        if (_options.OverwriteHeader)
        {
            var end = _output.Position;
            ZFileWriter.WriteHeaderBlock(block, _options, ZFileFlags.Header | ZFileFlags.HeaderOverwrite, indexOffset, blocks, (ulong)_originalSize, indexCrc);
            _output.Position = _headerPosition;
            _output.Write(block);
            _output.Position = end;
        }

        _output.Flush();
        _completed = true;
    }

    public override void Flush()
    {
        // Blocks are only whole once a batch is full or the stream completes; nothing to push early.
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                if (!_failed)
                {
                    Complete();
                }
            }
            finally
            {
                _completed = true;
                if (!_leaveOpen)
                {
                    _output.Dispose();
                }
            }
        }

        base.Dispose(disposing);
    }

    private void FlushBatch()
    {
        if (_batchFill == 0)
        {
            return;
        }

        try
        {
            CompressAndWriteBatch();
        }
        catch
        {
            _failed = true; // never finish a file with a hole in it
            throw;
        }

        _batchFill = 0;
    }

    private void CompressAndWriteBatch()
    {
        var blockSize = _options.BlockSize;
        var blocks = (_batchFill + blockSize - 1) / blockSize;
        if (blocks > 1 && Environment.ProcessorCount > 1)
        {
            Parallel.For(0, blocks, CompressOne);
        }
        else
        {
            for (var i = 0; i < blocks; i++)
            {
                CompressOne(i);
            }
        }

        for (var i = 0; i < blocks; i++)
        {
            var stored = _compressedLengths[i];
            if (stored > ZFileWriter.MaxStoredBlockLength)
            {
                ZFileWriter.WriteBlockTooLarge(_storedLengths.Count, blockSize, stored, _options.Algorithm);
            }

            _output.Write(_compressed, i * _slotSize, stored);
            _storedLengths.Add((uint)stored);
            _dataEnd += stored;
        }
    }

    private void CompressOne(int i)
    {
        var blockSize = _options.BlockSize;
        var source = _batch.AsSpan(i * blockSize, Math.Min(blockSize, _batchFill - (i * blockSize)));
        var slot = _compressed.AsSpan(i * _slotSize, _slotSize);
        var length = ZFileCodec.Compress(_options.Algorithm, source, slot[..^4]);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[length..], Crc32C.Compute(ZFileReader.BlockCrcSeed, slot[..length]));
        _compressedLengths[i] = length + 4;
    }
}
