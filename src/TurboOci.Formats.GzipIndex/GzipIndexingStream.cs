using System.Buffers;
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

    /// <summary>The gzip stream, or null when the whole blob is in <see cref="_view"/> and read from there.</summary>
    private readonly Stream? _compressed;
    private readonly Stream _indexOutput;
    private readonly bool _leaveOpen;
    private IRawInflater? _inflater;
    private bool _rawMembers;
    private uint _memberStartCrc;
    private long _memberStartOut;
    private readonly IInflaterFactory _inflaters;
    private readonly IZlibBlockCodec _codec;
    private readonly GzipIndexOptions _options;
    private readonly long _indexOrigin;

    /// <summary>The compressed blob in place, when the caller has it: inflating, span digests and window analysis read it there.</summary>
    private readonly IByteView? _view;

    private readonly byte[] _input;

    /// <summary>With the blob in a view: the view offset of input position 0 (the view is the input buffer).</summary>
    private long _inBase;
    private const int ViewChunk = 256 * 1024;
    private int _inPos;
    private int _inEnd;
    private bool _inputEof;
    private long _totalRead;

    /// <summary>The 32 KiB of output before the current <see cref="Read(Span{byte})"/> call (zeros before the stream's start).</summary>
    private readonly byte[] _history = new byte[GzipIndexHeader.WindowSize];
    private readonly Crc32 _crc = new();

    private long _ttin;
    private long _ttout;
    private State _state = State.Start;
    private bool _memberStartPending;
    private int _members;

    private long _expected;
    private Candidate _current = new();
    private Candidate _last = new();
    private bool _lastValid;

    private readonly List<GzipIndexEntry> _entries = [];
    private readonly List<(Task<byte[]> Sha256, uint Crc, bool StartsMember, long Start)> _spans = [];
    private int _spansHashed;
    private const int MaxSpanHashesInFlight = 32;
    private uint _entryPrefixCrc;
    private bool _entryStartsMember;
    private readonly RetainedBytes? _retained;
    private readonly Queue<PendingWindow> _pendingWindows = new();
    private readonly List<PendingWindow> _capturing = [];
    private const int MaxWindowsInFlight = 32;

    /// <summary>Compressed bytes kept per point for the sparse-window analysis: far more than 32 KiB of output ever needs.</summary>
    private const int MaxCapture = 256 * 1024;
    private long _windowPosition = GzipIndexHeader.Size;
    private GzipIndexBuildResult? _result;

    /// <param name="compressed">The gzip blob, read once from its current position to its end.</param>
    /// <param name="indexOutput">Where <c>gzip.meta</c> goes; must be seekable (the header is written last).</param>
    public GzipIndexingStream(Stream compressed, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options = null, bool leaveOpen = false)
        : this(compressed ?? throw new ArgumentNullException(nameof(compressed)), null, indexOutput, inflaters, codec, options, leaveOpen)
    {
    }

    /// <summary>
    /// Indexes a blob that is in memory already (a mapped file): it is inflated, hashed and analysed where it is, so
    /// the inflating thread copies none of its input. Bytes before the oldest span or window still being worked on
    /// are released (<see cref="IByteView.ReleaseBefore"/>) as indexing moves on.
    /// </summary>
    public GzipIndexingStream(IByteView compressed, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options = null)
        : this(null, compressed ?? throw new ArgumentNullException(nameof(compressed)), indexOutput, inflaters, codec, options, leaveOpen: true)
    {
    }

    private GzipIndexingStream(Stream? compressed, IByteView? view, Stream indexOutput, IInflaterFactory inflaters, IZlibBlockCodec codec,
        GzipIndexOptions? options, bool leaveOpen)
    {
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
        _view = view;
        _input = view is null ? new byte[InputChunk * 2] : [];
        _indexOutput = indexOutput;
        _leaveOpen = leaveOpen;
        _codec = codec;
        _inflaters = inflaters;
        _retained = (_options.SpanDigests || _options.SparseWindows) && view is null ? new RetainedBytes() : null;
        _indexOrigin = indexOutput.Position;
        indexOutput.Write(new byte[GzipIndexHeader.Size]);
    }

    private enum State
    {
        Start,
        Header,
        InMember,
        Trailer,
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
                if (_state is State.InMember or State.Header or State.Trailer)
                {
                    TurboOciFormatException.Throw(GzipFormat, "deflate stream", _totalRead,
                        "the gzip stream ends before its final block and trailer: truncated");
                }

                _state = State.Finished;
                break;
            }

            switch (_state)
            {
                case State.Start:
                    ChooseInflater();
                    continue;
                case State.Header:
                    ReadMemberHeader(buffer[..total]);
                    continue;
                case State.Trailer:
                    CheckMemberTrailer();
                    continue;
                case State.BetweenMembers:
                    StartNextMemberOrFinish();
                    continue;
            }

            var output = buffer[total..];
            InflateResult result;
            try
            {
                result = _inflater!.Inflate(Unread, output, InflateFlush.Block);
            }
            catch (InvalidDataException e)
            {
                throw new TurboOciFormatException(GzipFormat, "deflate data", _ttin, e.Message, e);
            }

            _inPos += result.Consumed;
            _ttin += result.Consumed;
            Produced(output[..result.Produced]);
            total += result.Produced;
            if (_capturing.Count > 0)
            {
                foreach (var capture in _capturing)
                {
                    capture.AppendOutput(output[..result.Produced], _ttout - result.Produced);
                }

                LaunchCapturedWindows(memberEnded: result.Status == InflateStatus.StreamEnd);
            }

            if (result.Status == InflateStatus.StreamEnd)
            {
                if (_rawMembers)
                {
                    _state = State.Trailer;
                    continue;
                }

                _members++;
                _state = State.BetweenMembers;
                continue;
            }

            if (result.AtBlockBoundary && !result.InLastBlock)
            {
                Offer(result.PendingBits, buffer[..total]);
            }
            else if (result.Consumed == 0 && result.Produced == 0 && result.Status == InflateStatus.NeedsMore && _inPos < _inEnd)
            {
                throw new InvalidOperationException("inflate made no progress with input and output available");
            }
        }

        Remember(buffer[..total]);
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
            // Span hashes and window analyses still running may read the view, which the caller unmaps next (and
            // reading an unmapped page kills the process): after an error they finish before this returns.
            var running = _spans.Select(span => (Task)span.Sha256).Concat(_pendingWindows.Select(window => window.Result).OfType<Task>()).ToArray();
            try
            {
                Task.WaitAll(running);
            }
            catch (AggregateException)
            {
                // Their results are not wanted any more.
            }

            _inflater?.Dispose();
            if (!_leaveOpen)
            {
                _compressed?.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>The input read and not consumed yet.</summary>
    private ReadOnlySpan<byte> Unread => _view is null ? _input.AsSpan(_inPos, _inEnd - _inPos) : _view.Slice(_inBase + _inPos, _inEnd - _inPos);

    /// <summary>Ensures at least <paramref name="wanted"/> unread input bytes, unless the input ends first.</summary>
    private bool Fill(int wanted)
    {
        if (_view is not null)
        {
            // The whole blob is in place: reading only moves the window over it forward.
            if (_inEnd - _inPos < wanted && !_inputEof)
            {
                _inBase += _inPos;
                _inEnd = (int)Math.Min(ViewChunk, _view.Length - _inBase);
                _inPos = 0;
                _totalRead = _inBase + _inEnd;
                _inputEof = _totalRead == _view.Length;
            }

            return _inEnd > _inPos;
        }

        while (_inEnd - _inPos < wanted && !_inputEof)
        {
            if (_inPos > 0)
            {
                _input.AsSpan(_inPos, _inEnd - _inPos).CopyTo(_input);
                _inEnd -= _inPos;
                _inPos = 0;
            }

            var read = _compressed!.Read(_input, _inEnd, Math.Min(InputChunk, _input.Length - _inEnd));
            if (read == 0)
            {
                _inputEof = true;
                break;
            }

            _retained?.Append(_input.AsSpan(_inEnd, read));
            foreach (var capture in _capturing)
            {
                capture.Append(_input.AsSpan(_inEnd, read));
            }

            _inEnd += read;
            _totalRead += read;
        }

        return _inEnd - _inPos >= Math.Min(wanted, 1) && _inEnd > _inPos;
    }

    private void StartNextMemberOrFinish()
    {
        Fill(2);
        var available = _inEnd - _inPos;
        if (available >= 2 && Unread[0] == 0x1f && Unread[1] == 0x8b)
        {
            // gzip -d and zlib's gzread go on to the next member; so do we (overlaybd stops).
            _inflater!.Reset();
            _ttin = _totalRead - available;
            _memberStartPending = true;
            _state = _rawMembers ? State.Header : State.InMember;
            return;
        }

        _state = State.Finished;
    }

    /// <summary>
    /// A gzip blob is inflated as raw deflate between headers and trailers we parse and check ourselves:
    /// zlib's gzip wrapper would compute a CRC-32 of every output byte on the inflating thread (a tenth of its
    /// time), while we compute one anyway, faster, for the span digests. Anything else (a zlib stream) is left
    /// to zlib's own wrapper detection.
    /// </summary>
    private void ChooseInflater()
    {
        Fill(2);
        _rawMembers = _inEnd - _inPos >= 2 && Unread[0] == 0x1f && Unread[1] == 0x8b;
        _inflater = _inflaters.Create(_rawMembers ? InflateWrapper.Raw : InflateWrapper.GzipOrZlib);
        _state = _rawMembers ? State.Header : State.InMember;
    }

    /// <summary>Parses a gzip member header (RFC 1952 §2.3) as zlib does, then offers the point after it (zlib's first <c>Z_BLOCK</c> stop).</summary>
    private void ReadMemberHeader(ReadOnlySpan<byte> callOutput)
    {
        var start = _ttin;
        var crc = new Crc32();
        if (HeaderByte(crc) != 0x1f || HeaderByte(crc) != 0x8b)
        {
            TurboOciFormatException.Throw(GzipFormat, "header", start, "incorrect header check");
        }

        if (HeaderByte(crc) != 8)
        {
            TurboOciFormatException.Throw(GzipFormat, "header.CM", start + 2, "unknown compression method");
        }

        var flags = HeaderByte(crc);
        if ((flags & 0xE0) != 0)
        {
            TurboOciFormatException.Throw(GzipFormat, "header.FLG", start + 3, "unknown header flags set");
        }

        for (var i = 0; i < 6; i++)
        {
            HeaderByte(crc); // MTIME, XFL, OS
        }

        if ((flags & 0x04) != 0)
        {
            var extra = HeaderByte(crc) | (HeaderByte(crc) << 8);
            for (var i = 0; i < extra; i++)
            {
                HeaderByte(crc);
            }
        }

        for (var field = 0x08; field <= 0x10; field <<= 1)
        {
            // FNAME, then FCOMMENT: zero-terminated.
            if ((flags & field) != 0)
            {
                while (HeaderByte(crc) != 0)
                {
                }
            }
        }

        if ((flags & 0x02) != 0)
        {
            var expected = (ushort)crc.GetCurrentHashAsUInt32();
            if ((HeaderByte(crc) | (HeaderByte(crc) << 8)) != expected)
            {
                TurboOciFormatException.Throw(GzipFormat, "header.HCRC", _ttin - 2, "header crc mismatch");
            }
        }

        _inflater!.Reset();
        _memberStartCrc = _crc.GetCurrentHashAsUInt32();
        _memberStartOut = _ttout;
        _state = State.InMember;
        Offer(0, callOutput);
    }

    private byte HeaderByte(Crc32 crc)
    {
        if (!Fill(1))
        {
            TurboOciFormatException.Throw(GzipFormat, "header", _ttin, "the gzip stream ends inside a member header: truncated");
        }

        var value = Unread[0];
        _inPos++;
        _ttin++;
        crc.Append([value]);
        return value;
    }

    /// <summary>Checks a member's trailer: the CRC-32 and length (mod 2^32) of its output.</summary>
    private void CheckMemberTrailer()
    {
        Fill(8);
        if (_inEnd - _inPos < 8)
        {
            TurboOciFormatException.Throw(GzipFormat, "trailer", _ttin, "the gzip stream ends inside a member trailer: truncated");
        }

        var trailer = Unread[..8];
        var crc = Crc32Combine.Suffix(_crc.GetCurrentHashAsUInt32(), _memberStartCrc, _ttout - _memberStartOut);
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(trailer) != crc)
        {
            TurboOciFormatException.Throw(GzipFormat, "trailer.CRC32", _ttin, "incorrect data check");
        }

        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) != (uint)(_ttout - _memberStartOut))
        {
            TurboOciFormatException.Throw(GzipFormat, "trailer.ISIZE", _ttin + 4, "incorrect length check");
        }

        _inPos += 8;
        _ttin += 8;
        _members++;
        _state = State.BetweenMembers;
    }

    private void Produced(ReadOnlySpan<byte> output)
    {
        if (output.IsEmpty)
        {
            return;
        }

        _ttout += output.Length;
        if (_options.SpanDigests || _rawMembers)
        {
            _crc.Append(output);
        }

    }

    /// <summary>
    /// Windows are taken from the caller's buffer where the output still is (<paramref name="callOutput"/>: this
    /// call's output so far, ending at the current position) and from <see cref="_history"/> before it, only for the
    /// points that need one: copying every candidate's window, or every output byte into a ring, costs the
    /// inflating thread several percent.
    /// </summary>
    private void CopyWindow(Candidate point, ReadOnlySpan<byte> callOutput, Span<byte> window)
    {
        if (point.HasWindow)
        {
            point.Window.CopyTo(window);
            return;
        }

        var inCall = checked((int)(point.DePos - (_ttout - callOutput.Length)));
        var fromCall = Math.Min(inCall, window.Length);
        var fromHistory = window.Length - fromCall;
        _history.AsSpan(_history.Length - fromHistory).CopyTo(window);
        callOutput.Slice(inCall - fromCall, fromCall).CopyTo(window[fromHistory..]);
    }

    /// <summary>At the end of a call: the remembered candidate keeps its window, and the history moves on.</summary>
    private void Remember(ReadOnlySpan<byte> callOutput)
    {
        if (_lastValid && !_last.HasWindow)
        {
            CopyWindow(_last, callOutput, _last.Window);
            _last.HasWindow = true;
        }

        if (callOutput.Length >= _history.Length)
        {
            callOutput[^_history.Length..].CopyTo(_history);
        }
        else if (callOutput.Length > 0)
        {
            _history.AsSpan(callOutput.Length).CopyTo(_history);
            callOutput.CopyTo(_history.AsSpan(_history.Length - callOutput.Length));
        }
    }

    /// <summary>overlaybd's IndexFilterRecorder::record, decision for decision.</summary>
    private void Offer(int bits, ReadOnlySpan<byte> callOutput)
    {
        var candidate = _current;
        candidate.Bits = bits;
        candidate.EnPos = _ttin;
        candidate.DePos = _ttout;
        candidate.PrefixCrc = _options.SpanDigests ? _crc.GetCurrentHashAsUInt32() : 0;
        candidate.StartsMember = _memberStartPending || _entries.Count == 0;
        candidate.HasWindow = false;

        if (_memberStartPending)
        {
            // Our multi-member extension: a later member's first point is always recorded.
            _memberStartPending = false;
            if (_lastValid)
            {
                Record(_last, callOutput);
                _lastValid = false;
            }

            Record(candidate, callOutput);
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
                Record(_last, callOutput);
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
            Record(candidate, callOutput);
            _expected += _options.Span;
        }
    }

    private void KeepAsLast()
    {
        (_last, _current) = (_current, _last);
        _lastValid = true;
    }

    private void Record(Candidate point, ReadOnlySpan<byte> callOutput)
    {
        // Compressing a 32 KiB window at level 6 costs about as much as inflating a MiB, so it runs on
        // another core while this thread inflates on; windows are written in order as they finish, and
        // their position and length are filled into the entry then. The bytes are the same as serially.
        var entry = new GzipIndexEntry(point.DePos, point.EnPos, WinPos: 0, (byte)point.Bits, WinLen: 0);
        var window = new byte[GzipIndexHeader.WindowSize];
        CopyWindow(point, callOutput, window);
        var pending = new PendingWindow(_entries.Count, window, point.Bits, entry.ReadStart, point.DePos + GzipIndexHeader.WindowSize);
        _pendingWindows.Enqueue(pending);
        if (_options.SparseWindows)
        {
            // The analysis needs the compressed bytes that produce the next 32 KiB, and that output: what was read
            // and produced so far now (the output of this call still holds it), the rest as it comes; it starts
            // once they are all there.
            if (_view is null)
            {
                pending.Append(_retained!.Slice(entry.ReadStart, MaxCapture));
            }

            var inCall = point.DePos - (_ttout - callOutput.Length);
            if (inCall >= 0)
            {
                pending.AppendOutput(callOutput[checked((int)inCall)..], point.DePos);
            }

            _capturing.Add(pending);
        }
        else
        {
            Launch(pending);
        }

        if (_options.SpanDigests && _entries.Count > 0)
        {
            CloseSpan(entry.EnPos, point.DePos, point.PrefixCrc);
        }

        _retained?.DropBefore(entry.ReadStart);
        _entryPrefixCrc = point.PrefixCrc;
        _entryStartsMember = point.StartsMember;

        _entries.Add(entry);
        WriteFinishedWindows(waitForAll: false);
        _view?.ReleaseBefore(OldestNeededCompressedByte());
    }

    /// <summary>
    /// The first compressed byte something still reads in the view: the open span (hashed when it closes), spans
    /// being hashed and windows being analysed. Everything before it can leave memory.
    /// </summary>
    private long OldestNeededCompressedByte()
    {
        var oldest = _entries[^1].ReadStart;
        if (_spansHashed < _spans.Count)
        {
            oldest = Math.Min(oldest, _spans[_spansHashed].Start);
        }

        if (_pendingWindows.TryPeek(out var window))
        {
            oldest = Math.Min(oldest, window.CompressedStart);
        }

        return oldest;
    }

    /// <summary>Starts the analysis of every captured window whose next 32 KiB of output (or its member's end) is read.</summary>
    private void LaunchCapturedWindows(bool memberEnded)
    {
        for (var i = 0; i < _capturing.Count; i++)
        {
            var pending = _capturing[i];
            if (memberEnded || _ttout >= pending.OutputEnd || pending.CaptureFull)
            {
                _capturing.RemoveAt(i--);
                Launch(pending);
            }
        }
    }

    private void Launch(PendingWindow pending)
    {
        pending.Result = _options.CompressWindows || _options.SparseWindows
            ? Task.Run(() => CompressWindow(pending))
            : Task.FromResult((pending.Window, pending.Window.Length));
    }

    private (byte[] Buffer, int Length) CompressWindow(PendingWindow pending)
    {
        var window = pending.Window;
        if (_options.SparseWindows)
        {
            var compressed = _view is null
                ? pending.Captured
                : _view.Slice(pending.CompressedStart, (int)Math.Min(MaxCapture, _view.Length - pending.CompressedStart));
            SparseWindow.Reduce(_inflaters, window, compressed, pending.Bits, pending.Output);
            pending.DropCapture();
        }

        if (!_options.CompressWindows)
        {
            return (window, window.Length);
        }

        var buffer = new byte[_codec.CompressBound(window.Length)];
        return (buffer, _codec.Compress(window, buffer, _options.Level));
    }

    /// <summary>Writes compressed windows in entry order: those already done, or all of them when asked
    /// (or when too many are in flight, which bounds memory to a few windows).</summary>
    private void WriteFinishedWindows(bool waitForAll)
    {
        // A window still capturing its compressed bytes is never waited for: only this thread's reading completes it.
        while (_pendingWindows.TryPeek(out var head) && head.Result is { } compressed
            && (waitForAll || compressed.IsCompleted || _pendingWindows.Count > MaxWindowsInFlight))
        {
            _pendingWindows.Dequeue();
            var (buffer, length) = compressed.GetAwaiter().GetResult();
            _indexOutput.Write(buffer, 0, length);
            _entries[head.EntryIndex] = _entries[head.EntryIndex] with { WinPos = _windowPosition, WinLen = (uint)length };
            _windowPosition += length;
        }
    }

    /// <summary>Finishes the digest of the span that began at the last recorded entry.</summary>
    private void CloseSpan(long compressedEnd, long uncompressedEnd, uint prefixCrcAtEnd)
    {
        // Hashing the compressed span would cost the inflating thread a tenth of its time: it runs on another
        // core, over the view when there is one, else over a copy (a few in flight at most, which bounds the memory held).
        var previous = _entries[^1];
        var start = previous.ReadStart;
        var length = checked((int)(compressedEnd - start));
        Task<byte[]> sha;
        if (_view is { } view)
        {
            sha = Task.Run(() => SHA256.HashData(view.Slice(start, length)));
        }
        else
        {
            var bytes = ArrayPool<byte>.Shared.Rent(length);
            _retained!.CopyTo(start, bytes.AsSpan(0, length));
            sha = Task.Run(() =>
            {
                var hash = SHA256.HashData(bytes.AsSpan(0, length));
                ArrayPool<byte>.Shared.Return(bytes);
                return hash;
            });
        }

        var crc = Crc32Combine.Suffix(prefixCrcAtEnd, _entryPrefixCrc, uncompressedEnd - previous.DePos);
        _spans.Add((sha, crc, _entryStartsMember, start));
        while (_spansHashed < _spans.Count && (_spans[_spansHashed].Sha256.IsCompleted || _spans.Count - _spansHashed > MaxSpanHashesInFlight))
        {
            _spans[_spansHashed++].Sha256.Wait();
        }
    }

    private GzipIndexBuildResult WriteIndex(long trailing)
    {
        if (_entries.Count == 0)
        {
            TurboOciFormatException.Throw(GzipFormat, "header", 0, "no deflate data: not a gzip stream");
        }

        LaunchCapturedWindows(memberEnded: true);
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
        if (_options.SpanDigests)
        {
            CloseSpan(_totalRead, _ttout, _crc.GetCurrentHashAsUInt32());
            spans = new GzipSpanDigests(_totalRead, _ttout, SHA256.HashData(entryArray), _spans.Select(s => new GzipSpanRecord(s.Sha256.GetAwaiter().GetResult(), s.Crc, s.StartsMember)).ToArray());
        }

        return new GzipIndexBuildResult(header, _members, trailing, spans);
    }

    /// <summary>A recorded point's window on its way to the index file.</summary>
    private sealed class PendingWindow(int entryIndex, byte[] window, int bits, long compressedStart, long outputEnd)
    {
        private byte[] _captured = [];
        private int _capturedLength;
        private byte[] _output = [];
        private int _outputLength;

        public int EntryIndex { get; } = entryIndex;

        public byte[] Window { get; } = window;

        public int Bits { get; } = bits;

        /// <summary>Compressed offset the point's data is read from (its partly used byte first).</summary>
        public long CompressedStart { get; } = compressedStart;

        /// <summary>Uncompressed offset up to which the deflate data may still read this window.</summary>
        public long OutputEnd { get; } = outputEnd;

        /// <summary>The stored bytes, once started (sparse windows start when their compressed bytes are captured).</summary>
        public Task<(byte[] Buffer, int Length)>? Result { get; set; }

        public bool CaptureFull => _capturedLength == MaxCapture;

        public ReadOnlySpan<byte> Captured => _captured.AsSpan(0, _capturedLength);

        /// <summary>The real output after the point, from its start (empty when the builder no longer had its start).</summary>
        public ReadOnlySpan<byte> Output => _output.AsSpan(0, _outputLength);

        public void DropCapture()
        {
            _captured = [];
            _capturedLength = 0;
            _output = [];
            _outputLength = 0;
        }

        /// <summary>Keeps the part of <paramref name="bytes"/> (output from uncompressed offset <paramref name="at"/>) that continues <see cref="Output"/>.</summary>
        public void AppendOutput(ReadOnlySpan<byte> bytes, long at)
        {
            var start = OutputEnd - GzipIndexHeader.WindowSize;
            var skip = start + _outputLength - at;
            if (skip < 0 || skip >= bytes.Length || _outputLength == GzipIndexHeader.WindowSize)
            {
                // Not contiguous with what is kept (a gap means the start is lost: the analysis then keeps more), or full.
                return;
            }

            if (_output.Length == 0)
            {
                _output = new byte[GzipIndexHeader.WindowSize];
            }

            var take = (int)Math.Min(bytes.Length - skip, GzipIndexHeader.WindowSize - _outputLength);
            bytes.Slice((int)skip, take).CopyTo(_output.AsSpan(_outputLength));
            _outputLength += take;
        }

        public void Append(ReadOnlySpan<byte> bytes)
        {
            var take = Math.Min(bytes.Length, MaxCapture - _capturedLength);
            if (_capturedLength + take > _captured.Length)
            {
                Array.Resize(ref _captured, Math.Min(MaxCapture, Math.Max(_capturedLength + take, _captured.Length * 2)));
            }

            bytes[..take].CopyTo(_captured.AsSpan(_capturedLength));
            _capturedLength += take;
        }
    }

    private sealed class Candidate
    {
        public long DePos;
        public long EnPos;
        public int Bits;
        public uint PrefixCrc;
        public bool StartsMember;

        /// <summary>Whether <see cref="Window"/> holds this point's window yet (taken only when the output moves on).</summary>
        public bool HasWindow;
        public readonly byte[] Window = new byte[GzipIndexHeader.WindowSize];
    }
}
