using System.IO.Hashing;
using System.Security.Cryptography;
using TurboOci.Storage;
using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// Inflates a gzip stream once and hands out the uncompressed bytes, building overlaybd's gzip
/// index (and optionally our span digests) as a side effect: one pass over any stream (file, pipe,
/// HTTP body), so a tar parser reading this stream indexes the layer for free.
/// </summary>
/// <remarks>
/// Access points follow overlaybd's <c>create_gz_index</c> exactly (§4.4): every deflate block
/// boundary reported by zlib's <c>inflate(Z_BLOCK)</c> outside the final block is a candidate; a
/// span filter keeps about one per span. The set of boundaries does not depend on how input and
/// output are chunked, so the result is byte for byte overlaybd's for a single-member gzip.
/// Multi-member blobs (overlaybd stops after the first member): every later member start is
/// recorded as an entry (bits 0, all-zero window) right after its gzip header, the pending candidate
/// of the previous member is recorded first, <c>uncompress_file_size</c> covers all members and
/// header flag bit 0 is set. An overlaybd reader then never returns bytes of the wrong member: any
/// read starts from an entry of its own member and stops short at that member's end.
/// </remarks>
public sealed class GzipIndexingStream : ReadOnlyForwardStream
{
    private const int InputChunk = GzipIndexHeader.WindowSize;
    private const string GzipFormat = "gzip";

    private readonly Stream _compressed;
    private readonly Stream _indexOutput;
    private readonly bool _leaveOpen;
    private readonly IRawInflater _inflater;
    private readonly IZlibBlockCodec _codec;
    private readonly GzipIndexOptions _options;
    private readonly long _indexOrigin;

    private readonly byte[] _input = new byte[InputChunk * 2];
    private int _inPos;
    private int _inEnd;
    private bool _inputEof;
    private long _totalRead;

    private readonly byte[] _ring = new byte[GzipIndexHeader.WindowSize];
    private int _ringPos;
    private readonly Crc32 _crc = new();

    private long _ttin;
    private long _ttout;
    private State _state = State.InMember;
    private bool _memberStartPending;
    private int _members;

    private long _expected;
    private Candidate _current = new();
    private Candidate _last = new();
    private bool _lastValid;

    private readonly List<GzipIndexEntry> _entries = [];
    private readonly List<GzipSpanRecord> _spans = [];
    private uint _entryPrefixCrc;
    private bool _entryStartsMember;
    private readonly RetainedBytes? _retained;
    private readonly Queue<(int EntryIndex, Task<(byte[] Buffer, int Length)> Compressed)> _pendingWindows = new();
    private const int MaxWindowsInFlight = 8;
    private long _windowPosition = GzipIndexHeader.Size;
    private GzipIndexBuildResult? _result;

    /// <param name="compressed">The gzip blob, read once from its current position to its end.</param>
    /// <param name="indexOutput">Where <c>gzip.meta</c> goes; must be seekable (the header is written last).</param>
    public GzipIndexingStream(Stream compressed, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(compressed);
        ArgumentNullException.ThrowIfNull(indexOutput);
        ArgumentNullException.ThrowIfNull(inflaters);
        ArgumentNullException.ThrowIfNull(codec);
        if (!indexOutput.CanSeek || !indexOutput.CanWrite)
        {
            throw new ArgumentException("the index output must be writable and seekable: its header is written last", nameof(indexOutput));
        }

        _options = options ?? new GzipIndexOptions();
        _options.Validate();
        _compressed = compressed;
        _indexOutput = indexOutput;
        _leaveOpen = leaveOpen;
        _codec = codec;
        _inflater = inflaters.Create(InflateWrapper.GzipOrZlib);
        _retained = _options.SpanDigests ? new RetainedBytes() : null;
        _indexOrigin = indexOutput.Position;
        indexOutput.Write(new byte[GzipIndexHeader.Size]);
    }

    private enum State
    {
        InMember,
        BetweenMembers,
        Finished,
    }

    /// <summary>Compressed bytes read so far (for progress).</summary>
    public long CompressedPosition => _totalRead;

    /// <summary>Uncompressed bytes handed out so far.</summary>
    public long UncompressedPosition => _ttout;

    public override long Position
    {
        get => _ttout;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length && _state != State.Finished)
        {
            if (_inPos == _inEnd && !Fill(1))
            {
                if (_state == State.InMember)
                {
                    TurboOciFormatException.Throw(GzipFormat, "deflate stream", _totalRead,
                        "the gzip stream ends before its final block and trailer: truncated");
                }

                _state = State.Finished;
                break;
            }

            if (_state == State.BetweenMembers)
            {
                StartNextMemberOrFinish();
                continue;
            }

            var output = buffer[total..];
            InflateResult result;
            try
            {
                result = _inflater.Inflate(_input.AsSpan(_inPos, _inEnd - _inPos), output, InflateFlush.Block);
            }
            catch (InvalidDataException e)
            {
                throw new TurboOciFormatException(GzipFormat, "deflate data", _ttin, e.Message, e);
            }

            _inPos += result.Consumed;
            _ttin += result.Consumed;
            Produced(output[..result.Produced]);
            total += result.Produced;
            if (result.Status == InflateStatus.StreamEnd)
            {
                _members++;
                _state = State.BetweenMembers;
                continue;
            }

            if (result.AtBlockBoundary && !result.InLastBlock)
            {
                Offer(result.PendingBits);
            }
            else if (result.Consumed == 0 && result.Produced == 0 && result.Status == InflateStatus.NeedsMore && _inPos < _inEnd)
            {
                throw new InvalidOperationException("inflate made no progress with input and output available");
            }
        }

        return total;
    }

    /// <summary>
    /// Reads whatever is left (decompressing and discarding), then writes the entry area and the
    /// header. Call once, after the consumer is done; the index is incomplete before.
    /// </summary>
    public GzipIndexBuildResult Complete()
    {
        if (_result is not null)
        {
            return _result;
        }

        var discard = new byte[1 << 16];
        while (Read(discard) > 0)
        {
        }

        // Bytes after the last member belong to the blob (gzip_file_size) but hold no data.
        var trailingStart = _totalRead - (_inEnd - _inPos);
        _inPos = _inEnd;
        while (Fill(1))
        {
            _inPos = _inEnd;
        }

        var trailing = _totalRead - trailingStart;
        _result = WriteIndex(trailing);
        return _result;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inflater.Dispose();
            if (!_leaveOpen)
            {
                _compressed.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>Ensures at least <paramref name="wanted"/> unread input bytes, unless the input ends first.</summary>
    private bool Fill(int wanted)
    {
        while (_inEnd - _inPos < wanted && !_inputEof)
        {
            if (_inPos > 0)
            {
                _input.AsSpan(_inPos, _inEnd - _inPos).CopyTo(_input);
                _inEnd -= _inPos;
                _inPos = 0;
            }

            var read = _compressed.Read(_input, _inEnd, Math.Min(InputChunk, _input.Length - _inEnd));
            if (read == 0)
            {
                _inputEof = true;
                break;
            }

            _retained?.Append(_input.AsSpan(_inEnd, read));
            _inEnd += read;
            _totalRead += read;
        }

        return _inEnd - _inPos >= Math.Min(wanted, 1) && _inEnd > _inPos;
    }

    private void StartNextMemberOrFinish()
    {
        Fill(2);
        var available = _inEnd - _inPos;
        if (available >= 2 && _input[_inPos] == 0x1f && _input[_inPos + 1] == 0x8b)
        {
            // gzip -d and zlib's gzread go on to the next member; so do we (overlaybd stops).
            _inflater.Reset();
            _ttin = _totalRead - available;
            _memberStartPending = true;
            _state = State.InMember;
            return;
        }

        _state = State.Finished;
    }

    private void Produced(ReadOnlySpan<byte> output)
    {
        if (output.IsEmpty)
        {
            return;
        }

        _ttout += output.Length;
        if (_retained is not null)
        {
            _crc.Append(output);
        }

        if (output.Length >= _ring.Length)
        {
            output[^_ring.Length..].CopyTo(_ring);
            _ringPos = 0;
            return;
        }

        var first = Math.Min(output.Length, _ring.Length - _ringPos);
        output[..first].CopyTo(_ring.AsSpan(_ringPos));
        output[first..].CopyTo(_ring);
        _ringPos = (_ringPos + output.Length) % _ring.Length;
    }

    /// <summary>overlaybd's IndexFilterRecorder::record, decision for decision.</summary>
    private void Offer(int bits)
    {
        var candidate = _current;
        candidate.Bits = bits;
        candidate.EnPos = _ttin;
        candidate.DePos = _ttout;
        candidate.PrefixCrc = _retained is null ? 0 : _crc.GetCurrentHashAsUInt32();
        candidate.StartsMember = _memberStartPending || _entries.Count == 0;
        _ring.AsSpan(_ringPos).CopyTo(candidate.Window);
        _ring.AsSpan(0, _ringPos).CopyTo(candidate.Window.AsSpan(_ring.Length - _ringPos));

        if (_memberStartPending)
        {
            // Our multi-member extension: a later member's first point is always recorded.
            _memberStartPending = false;
            if (_lastValid)
            {
                Record(_last);
                _lastValid = false;
            }

            Record(candidate);
            _expected = candidate.DePos + _options.Span;
            return;
        }

        if (candidate.DePos < _expected)
        {
            KeepAsLast();
            return;
        }

        if (candidate.DePos > _expected)
        {
            if (_lastValid)
            {
                _lastValid = false;
                Record(_last);
            }

            KeepAsLast();
            candidate = _last;
            while (_expected < candidate.DePos)
            {
                _expected += _options.Span;
            }
        }

        if (candidate.DePos == _expected)
        {
            _lastValid = false;
            Record(candidate);
            _expected += _options.Span;
        }
    }

    private void KeepAsLast()
    {
        (_last, _current) = (_current, _last);
        _lastValid = true;
    }

    private void Record(Candidate point)
    {
        // Compressing a 32 KiB window at level 6 costs about as much as inflating a MiB, so it runs on
        // another core while this thread inflates on; windows are written in order as they finish, and
        // their position and length are filled into the entry then. The bytes are the same as serially.
        var window = point.Window.ToArray();
        var compressed = _options.CompressWindows
            ? Task.Run(() => CompressWindow(window))
            : Task.FromResult((window, window.Length));
        _pendingWindows.Enqueue((_entries.Count, compressed));
        var entry = new GzipIndexEntry(point.DePos, point.EnPos, WinPos: 0, (byte)point.Bits, WinLen: 0);

        if (_retained is not null)
        {
            if (_entries.Count > 0)
            {
                CloseSpan(entry.EnPos, point.DePos, point.PrefixCrc);
            }

            _retained.DropBefore(entry.ReadStart);
            _entryPrefixCrc = point.PrefixCrc;
            _entryStartsMember = point.StartsMember;
        }

        _entries.Add(entry);
        WriteFinishedWindows(waitForAll: false);
    }

    private (byte[] Buffer, int Length) CompressWindow(byte[] window)
    {
        var buffer = new byte[_codec.CompressBound(window.Length)];
        return (buffer, _codec.Compress(window, buffer, _options.Level));
    }

    /// <summary>Writes compressed windows in entry order: those already done, or all of them when asked
    /// (or when too many are in flight, which bounds memory to a few windows).</summary>
    private void WriteFinishedWindows(bool waitForAll)
    {
        while (_pendingWindows.TryPeek(out var head)
            && (waitForAll || head.Compressed.IsCompleted || _pendingWindows.Count > MaxWindowsInFlight))
        {
            _pendingWindows.Dequeue();
            var (buffer, length) = head.Compressed.GetAwaiter().GetResult();
            _indexOutput.Write(buffer, 0, length);
            _entries[head.EntryIndex] = _entries[head.EntryIndex] with { WinPos = _windowPosition, WinLen = (uint)length };
            _windowPosition += length;
        }
    }

    /// <summary>Finishes the digest of the span that began at the last recorded entry.</summary>
    private void CloseSpan(long compressedEnd, long uncompressedEnd, uint prefixCrcAtEnd)
    {
        var previous = _entries[^1];
        var sha = _retained!.Hash(previous.ReadStart, compressedEnd);
        var crc = Crc32Combine.Suffix(prefixCrcAtEnd, _entryPrefixCrc, uncompressedEnd - previous.DePos);
        _spans.Add(new GzipSpanRecord(sha, crc, _entryStartsMember));
    }

    private GzipIndexBuildResult WriteIndex(long trailing)
    {
        if (_entries.Count == 0)
        {
            TurboOciFormatException.Throw(GzipFormat, "header", 0, "no deflate data: not a gzip stream");
        }

        WriteFinishedWindows(waitForAll: true);

        var entryArray = new byte[_entries.Count * GzipIndexHeader.EntrySize];
        for (var i = 0; i < _entries.Count; i++)
        {
            _entries[i].Write(entryArray.AsSpan(i * GzipIndexHeader.EntrySize));
        }

        byte[] area;
        if (_options.CompressWindows)
        {
            area = new byte[_codec.CompressBound(entryArray.Length)];
            area = area.AsSpan(0, _codec.Compress(entryArray, area, _options.Level)).ToArray();
        }
        else
        {
            area = entryArray;
        }

        _indexOutput.Write(area);
        var indexStart = _windowPosition;
        var header = new GzipIndexHeader(
            MajorVersion: 1,
            MinorVersion: 0,
            DictCompressAlgo: _options.CompressWindows ? GzipIndexHeader.AlgoZlib : GzipIndexHeader.AlgoNone,
            DictCompressLevel: (sbyte)_options.Level,
            Flag: _members > 1 ? GzipIndexHeader.FlagMultiMember : (byte)0,
            Span: _options.Span,
            Window: GzipIndexHeader.WindowSize,
            IndexSize: GzipIndexHeader.EntrySize,
            IndexNum: _entries.Count,
            GzipFileSize: _totalRead,
            IndexFileSize: indexStart + area.Length,
            UncompressFileSize: _ttout,
            IndexStart: indexStart,
            IndexAreaLen: area.Length,
            Crc: 0);
        var headerBytes = new byte[GzipIndexHeader.Size];
        header = header with { Crc = header.Write(headerBytes) };
        var end = _indexOutput.Position;
        _indexOutput.Position = _indexOrigin;
        _indexOutput.Write(headerBytes);
        _indexOutput.Position = end;
        _indexOutput.Flush();

        GzipSpanDigests? spans = null;
        if (_retained is not null)
        {
            CloseSpan(_totalRead, _ttout, _crc.GetCurrentHashAsUInt32());
            spans = new GzipSpanDigests(_totalRead, _ttout, SHA256.HashData(entryArray), _spans.ToArray());
        }

        return new GzipIndexBuildResult(header, _members, trailing, spans);
    }

    private sealed class Candidate
    {
        public long DePos;
        public long EnPos;
        public int Bits;
        public uint PrefixCrc;
        public bool StartsMember;
        public readonly byte[] Window = new byte[GzipIndexHeader.WindowSize];
    }
}
