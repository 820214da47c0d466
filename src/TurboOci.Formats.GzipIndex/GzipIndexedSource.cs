using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Caching.Memory;
using TurboOci.Storage;
using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// The uncompressed view of an unmodified gzip blob, read at random through its index: a read is
/// turned into a ranged read of the compressed bytes from the nearest access point, primed with the
/// point's bits and 32 KiB window, inflated to the target. Thread-safe.
/// </summary>
/// <remarks>
/// The unit of work is a span (entry to next entry). With the cache on, whole spans are inflated,
/// checked and cached (<see cref="GzipReaderOptions.CacheBytes"/>); with it off, a read inside one
/// span inflates only up to its end. A read covering several spans inflates them in parallel.
/// Checks, so a mismatch is an error and never wrong data: the index header CRC and sizes against
/// the blob (at open); with span digests, the compressed bytes' SHA-256 before inflating (every
/// read); for every whole inflated span, that it ends exactly on the next entry's bit position (or
/// at the stream end for the last one), its CRC-32 against the digests, and a member's gzip trailer
/// (CRC-32 and ISIZE) once all of that member's spans are known (always so for sequential reads).
/// Without span digests a cold partial read cannot detect a damaged blob: use gzip.spans.
/// </remarks>
public sealed class GzipIndexedSource : BlockSource
{
    private const string BlobFormat = "gzip blob";
    private const int InputChunk = 256 << 10;
    private const byte SpanUnknown = 0;
    private const byte SpanContinuesMember = 1;
    private const byte SpanEndsMember = 2;

    private readonly BlockSource _blob;
    private readonly GzipSeekIndex _index;
    private readonly IInflaterFactory _inflaters;
    private readonly GzipSpanDigests? _digests;
    private readonly GzipReaderOptions _options;
    private readonly MemoryCache? _cache;
    private readonly ConcurrentBag<IRawInflater> _pool = [];
    private readonly byte[] _spanState;
    private readonly uint[] _spanCrc;
    private readonly bool _ownsSources;

    /// <param name="blob">The gzip blob (any source: file, registry range reader, cache).</param>
    /// <param name="index">Its index; must have been built for exactly this blob.</param>
    /// <param name="digests">Optional span digests; when given, every compressed range and every span is verified.</param>
    public GzipIndexedSource(BlockSource blob, GzipSeekIndex index, IInflaterFactory inflaters, GzipSpanDigests? digests = null,
        GzipReaderOptions? options = null, bool ownsSources = false)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(inflaters);
        if (index.CompressedSize != blob.Size)
        {
            TurboOciFormatException.Throw(GzipIndexHeader.FormatName, "header.gzip_file_size", GzipIndexHeader.GzipFileSizeOffset,
                $"the index is for a {index.CompressedSize}-byte gzip blob but this blob is {blob.Size} bytes: wrong or truncated blob");
        }

        digests?.CheckMatches(index);
        _blob = blob;
        _index = index;
        _inflaters = inflaters;
        _digests = digests;
        _options = options ?? new GzipReaderOptions();
        _ownsSources = ownsSources;
        _spanState = new byte[index.Entries.Count];
        _spanCrc = new uint[index.Entries.Count];
        if (_options.CacheBytes > 0)
        {
            _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = _options.CacheBytes });
        }
    }

    public override long Size => _index.UncompressedSize;

    public GzipSeekIndex Index => _index;

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var length = ClampLength(offset, destination.Length);
        if (length == 0)
        {
            return 0;
        }

        var end = offset + length;
        var first = _index.FindEntry(offset);
        var last = _index.FindEntry(end - 1);
        if (first == last)
        {
            ReadFromSpan(first, offset, destination[..length]);
            return length;
        }

        var jobs = new List<Job>();
        for (var i = first; i <= last; i++)
        {
            var spanStart = _index.Entries[i].DePos;
            var spanLength = _index.SpanLength(i);
            if (spanLength == 0)
            {
                continue;
            }

            var partStart = Math.Max(offset, spanStart);
            var partEnd = Math.Min(end, spanStart + spanLength);
            jobs.Add(new Job(i, partStart - spanStart, (int)(partEnd - partStart), (int)(partStart - offset)));
        }

        var results = new (byte[] Buffer, int Offset, bool Rented)[jobs.Count];
        var memberEnds = new ConcurrentBag<(int Span, Trailer Trailer)>();
        try
        {
            RunParallel(jobs.Count, k =>
            {
                var job = jobs[k];
                var spanLength = _index.SpanLength(job.Span);
                if (job.Length == spanLength && spanLength <= _options.MaxMaterializedSpan)
                {
                    // Fully covered: inflated and checked whole, but the caller gets it all, so no cache slot.
                    var whole = ArrayPool<byte>.Shared.Rent(job.Length);
                    results[k] = (whole, 0, true);
                    if (Decode(job.Span, 0, whole.AsSpan(0, job.Length), fullSpan: true) is { } trailer)
                    {
                        memberEnds.Add((job.Span, trailer));
                    }
                }
                else if (Cacheable(spanLength))
                {
                    results[k] = (GetSpan(job.Span, memberEnds), (int)job.SpanOffset, false);
                }
                else
                {
                    var part = ArrayPool<byte>.Shared.Rent(job.Length);
                    results[k] = (part, 0, true);
                    Decode(job.Span, job.SpanOffset, part.AsSpan(0, job.Length), fullSpan: false);
                }
            });

            for (var k = 0; k < jobs.Count; k++)
            {
                results[k].Buffer.AsSpan(results[k].Offset, jobs[k].Length).CopyTo(destination[jobs[k].DestinationOffset..]);
            }

            foreach (var (span, trailer) in memberEnds.OrderBy(m => m.Span))
            {
                VerifyMember(span, trailer);
            }
        }
        finally
        {
            foreach (var result in results)
            {
                if (result.Rented)
                {
                    ArrayPool<byte>.Shared.Return(result.Buffer);
                }
            }
        }

        return length;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _cache?.Dispose();
            while (_pool.TryTake(out var inflater))
            {
                inflater.Dispose();
            }

            if (_ownsSources)
            {
                _blob.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// A read inside one span. With the cache on, the whole span is inflated, checked and cached for
    /// its neighbours; with it off (or for a span too large to cache) only the prefix up to the read's end is
    /// inflated, which halves the average latency of a cold random read.
    /// </summary>
    private void ReadFromSpan(int span, long offset, Span<byte> destination)
    {
        var spanOffset = offset - _index.Entries[span].DePos;
        if (!Cacheable(_index.SpanLength(span)))
        {
            Decode(span, spanOffset, destination, fullSpan: false);
            return;
        }

        var memberEnds = new ConcurrentBag<(int Span, Trailer Trailer)>();
        GetSpan(span, memberEnds).AsSpan((int)spanOffset, destination.Length).CopyTo(destination);
        foreach (var (s, trailer) in memberEnds)
        {
            VerifyMember(s, trailer);
        }
    }

    /// <summary>Whether a span is worth inflating whole for the cache: not when it could never fit (or crowd out everything else).</summary>
    private bool Cacheable(long spanLength) =>
        _cache is not null && spanLength <= _options.MaxMaterializedSpan && spanLength <= _options.CacheBytes / 4;

    /// <summary>A whole span's bytes from the cache, or freshly inflated, checked and cached.</summary>
    private byte[] GetSpan(int span, ConcurrentBag<(int, Trailer)> memberEnds)
    {
        if (_cache!.TryGetValue(span, out byte[]? cached) && cached is not null)
        {
            return cached;
        }

        var length = (int)_index.SpanLength(span);
        var data = GC.AllocateUninitializedArray<byte>(length);
        if (Decode(span, 0, data, fullSpan: true) is { } trailer)
        {
            memberEnds.Add((span, trailer));
        }

        _cache!.Set(span, data, new MemoryCacheEntryOptions { Size = Math.Max(length, 1) });
        return data;
    }

    /// <summary>
    /// Inflates span <paramref name="span"/> from its access point, skips <paramref name="skip"/> bytes
    /// and fills <paramref name="destination"/>. With <paramref name="fullSpan"/> the whole span is
    /// produced and its end is checked against the next entry; returns the gzip trailer when the
    /// span ends a member.
    /// </summary>
    private Trailer? Decode(int span, long skip, Span<byte> destination, bool fullSpan)
    {
        var entry = _index.Entries[span];
        var (start, end) = _index.CompressedRange(span);
        using var input = new CompressedInput(_blob, start, end);
        if (_digests is not null)
        {
            input.LoadWholeAndVerify(_digests.Spans[span].CompressedSha256, span, _options.MaxVerifiedCompressedSpan);
        }

        var inflater = RentInflater();
        var window = ArrayPool<byte>.Shared.Rent(GzipIndexHeader.WindowSize);
        try
        {
            if (entry.Bits > 0)
            {
                var primed = input.TakeByte();
                inflater.Prime(entry.Bits, primed >> (8 - entry.Bits));
            }

            _index.ReadWindow(span, window);
            inflater.SetDictionary(window.AsSpan(0, GzipIndexHeader.WindowSize));
            Skip(inflater, input, span, skip, window);

            var result = default(InflateResult);
            var produced = 0;
            var ended = false;
            while (produced < destination.Length)
            {
                result = InflateSome(inflater, input, destination[produced..], span);
                produced += result.Produced;
                if (result.Status == InflateStatus.StreamEnd)
                {
                    ended = true;
                    if (produced < destination.Length)
                    {
                        Mismatch(span, input.Position, $"the deflate stream ends {destination.Length - produced} bytes before the span's end");
                    }
                }
            }

            if (!fullSpan)
            {
                return null;
            }

            if (!ended)
            {
                ended = CheckSpanEnd(inflater, input, span, result);
            }

            var crc = Crc32.HashToUInt32(destination);
            if (_digests is not null && _digests.Spans[span].UncompressedCrc32 != crc)
            {
                TurboOciFormatException.Throw(GzipSpanDigests.FormatName, $"span[{span}].crc32", _index.Entries[span].DePos,
                    "the inflated span's CRC-32 differs from gzip.spans: damaged window or index");
            }

            _spanCrc[span] = crc;
            Volatile.Write(ref _spanState[span], ended ? SpanEndsMember : SpanContinuesMember);
            if (!ended)
            {
                return null;
            }

            Span<byte> trailer = stackalloc byte[8];
            if (_blob.ReadAt(input.Position, trailer) != 8)
            {
                TurboOciFormatException.Throw(BlobFormat, "gzip trailer", input.Position, "the blob ends inside a gzip member's trailer");
            }

            if (span + 1 < _index.Entries.Count)
            {
                var next = _index.Entries[span + 1];
                if (next.Bits != 0 || next.EnPos < input.Position + 8 + 10)
                {
                    Mismatch(span, input.Position, "a gzip member ends here but the next entry is not the start of the next member");
                }
            }

            return new Trailer(input.Position, BinaryPrimitives.ReadUInt32LittleEndian(trailer), BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]));
        }
        catch (InvalidDataException e)
        {
            throw new TurboOciFormatException(BlobFormat, $"span[{span}]", input.Position,
                $"corrupt deflate data from this access point ({e.Message}): damaged blob, or an index made for another blob", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(window);
            _pool.Add(inflater);
        }
    }

    private static void Skip(IRawInflater inflater, CompressedInput input, int span, long skip, byte[] scratch)
    {
        while (skip > 0)
        {
            var result = InflateSome(inflater, input, scratch.AsSpan(0, (int)Math.Min(skip, scratch.Length)), span);
            skip -= result.Produced;
            if (result.Status == InflateStatus.StreamEnd && skip > 0)
            {
                Mismatch(span, input.Position, "the deflate stream ends before the requested offset");
            }
        }
    }

    /// <summary>One inflate call that makes progress, refilling input as needed.</summary>
    private static InflateResult InflateSome(IRawInflater inflater, CompressedInput input, Span<byte> output, int span)
    {
        while (true)
        {
            if (input.Available == 0 && !input.Refill())
            {
                Mismatch(span, input.Position, "the span's compressed bytes end before its data does");
            }

            var result = inflater.Inflate(input.Unread, output, InflateFlush.Block);
            input.Advance(result.Consumed);
            if (result.Produced > 0 || result.Status == InflateStatus.StreamEnd || result.Consumed > 0 || result.AtBlockBoundary)
            {
                return result;
            }

            if (input.Available > 0)
            {
                throw new InvalidOperationException("inflate made no progress with input and output available");
            }
        }
    }

    /// <summary>
    /// After the span's last byte the stream must sit exactly at the next entry's bit position (empty
    /// blocks may come first), or end there for the last span. Returns whether the member ended.
    /// </summary>
    private bool CheckSpanEnd(IRawInflater inflater, CompressedInput input, int span, InflateResult last)
    {
        var isLast = span + 1 == _index.Entries.Count;
        var target = isLast ? long.MaxValue : _index.Entries[span + 1].BitPosition;
        for (var guard = 0; guard < 1_000_000; guard++)
        {
            if (!isLast && last.AtBlockBoundary)
            {
                var position = (input.Position * 8) - last.PendingBits;
                if (position == target)
                {
                    return false;
                }

                if (position > target)
                {
                    break;
                }
            }

            if (input.Available == 0 && !input.Refill())
            {
                break;
            }

            last = inflater.Inflate(input.Unread, Span<byte>.Empty, InflateFlush.Block);
            input.Advance(last.Consumed);
            if (last.Status == InflateStatus.StreamEnd)
            {
                // The member ends here; for a span that is not the last, Decode checks that the next entry starts the next member.
                return true;
            }

            if (last.Consumed == 0 && !last.AtBlockBoundary)
            {
                break;
            }
        }

        Mismatch(span, input.Position, isLast
            ? "the deflate stream goes on past the index's uncompressed size"
            : "the stream is not at the next entry's block boundary after this span");
        return false;
    }

    /// <summary>Checks a member's trailer once all its spans are known (CRC-32 combined across spans, ISIZE).</summary>
    private void VerifyMember(int endSpan, Trailer trailer)
    {
        var crc = _spanCrc[endSpan];
        long length = _index.SpanLength(endSpan);
        for (var j = endSpan; j > 0; j--)
        {
            var previous = Volatile.Read(ref _spanState[j - 1]);
            if (previous == SpanEndsMember || (previous == SpanUnknown && _digests?.Spans[j].StartsMember == true))
            {
                break;
            }

            uint previousCrc;
            if (previous == SpanContinuesMember)
            {
                previousCrc = _spanCrc[j - 1];
            }
            else if (_digests is not null)
            {
                previousCrc = _digests.Spans[j - 1].UncompressedCrc32;
            }
            else
            {
                return; // Not every span of this member has been inflated yet: nothing to check against.
            }

            crc = Crc32Combine.Combine(previousCrc, crc, length);
            length += _index.SpanLength(j - 1);
        }

        if (crc != trailer.Crc32 || (uint)length != trailer.Size)
        {
            TurboOciFormatException.Throw(BlobFormat, "gzip trailer", trailer.Offset,
                $"the member's CRC-32/size are 0x{crc:x8}/{(uint)length} but its trailer says 0x{trailer.Crc32:x8}/{trailer.Size}: damaged data or wrong index");
        }
    }

    private IRawInflater RentInflater()
    {
        if (_pool.TryTake(out var inflater))
        {
            inflater.Reset();
            return inflater;
        }

        return _inflaters.Create(InflateWrapper.Raw);
    }

    private void RunParallel(int count, Action<int> body)
    {
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.MaxParallelism) }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    private static void Mismatch(int span, long offset, string problem) =>
        TurboOciFormatException.Throw(BlobFormat, $"span[{span}]", offset, $"{problem}: the index does not match this blob (or the blob is damaged)");

    private readonly record struct Job(int Span, long SpanOffset, int Length, int DestinationOffset);

    private readonly record struct Trailer(long Offset, uint Crc32, uint Size);

    /// <summary>A span's compressed bytes, read whole (to verify a digest) or in chunks.</summary>
    private sealed class CompressedInput : IDisposable
    {
        private readonly BlockSource _blob;
        private readonly long _start;
        private readonly long _rangeEnd;
        private byte[]? _buffer;
        private int _pos;
        private int _end;
        private long _next;

        public CompressedInput(BlockSource blob, long start, long end)
        {
            _blob = blob;
            _start = start;
            _rangeEnd = end;
            _next = start;
        }

        /// <summary>Absolute blob offset of the next unread byte.</summary>
        public long Position => _next - (_end - _pos);

        public int Available => _end - _pos;

        public ReadOnlySpan<byte> Unread => _buffer.AsSpan(_pos, _end - _pos);

        public void LoadWholeAndVerify(byte[] sha256, int span, int limit)
        {
            var length = _rangeEnd - _start;
            if (length > limit)
            {
                TurboOciFormatException.Throw(BlobFormat, $"span[{span}]", _start, $"compressed span of {length} bytes is larger than the {limit}-byte verification limit");
            }

            Load((int)length);
            if (!SHA256.HashData(_buffer.AsSpan(0, _end)).AsSpan().SequenceEqual(sha256))
            {
                TurboOciFormatException.Throw(BlobFormat, $"span[{span}]", _start,
                    "SHA-256 of the span's compressed bytes differs from gzip.spans: damaged or wrong blob");
            }
        }

        public byte TakeByte()
        {
            if (Available == 0 && !Refill())
            {
                TurboOciFormatException.Throw(BlobFormat, "access point", _start, "the blob ends at an access point");
            }

            return _buffer![_pos++];
        }

        public void Advance(int count) => _pos += count;

        public bool Refill()
        {
            if (_next >= _rangeEnd)
            {
                return false;
            }

            Load((int)Math.Min(InputChunk, _rangeEnd - _next));
            return true;
        }

        public void Dispose()
        {
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }
        }

        private void Load(int length)
        {
            if (_buffer is null || _buffer.Length < length)
            {
                if (_buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(_buffer);
                }

                _buffer = ArrayPool<byte>.Shared.Rent(length);
            }

            var read = _blob.ReadAt(_next, _buffer.AsSpan(0, length));
            if (read != length)
            {
                TurboOciFormatException.Throw(BlobFormat, "compressed data", _next + read, "the blob ends early: truncated");
            }

            _pos = 0;
            _end = length;
            _next += length;
        }
    }
}
