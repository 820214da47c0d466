namespace TurboOci.Storage.Compression;

/// <summary>Which wrapper an inflater expects around the deflate data.</summary>
public enum InflateWrapper
{
    /// <summary>Bare deflate blocks (zlib windowBits −15): used to resume a stream at a checkpoint.</summary>
    Raw,

    /// <summary>A gzip or zlib stream, detected from its header (zlib windowBits 15 + 32).</summary>
    GzipOrZlib,
}

/// <summary>How far an inflate call may run before it returns.</summary>
public enum InflateFlush
{
    /// <summary>Run until the input is used up or the output is full.</summary>
    NoFlush,

    /// <summary>Also stop at every deflate block boundary (zlib <c>Z_BLOCK</c>), and right after a gzip/zlib header.</summary>
    Block,
}

/// <summary>What one inflate call did.</summary>
public enum InflateStatus
{
    /// <summary>Progress was made, or the call stopped at a block boundary.</summary>
    Ok,

    /// <summary>The end of the (gzip member's / raw) deflate stream was reached, trailer checked if wrapped.</summary>
    StreamEnd,

    /// <summary>No progress was possible: more input or more output space is needed (zlib <c>Z_BUF_ERROR</c>). Not an error.</summary>
    NeedsMore,
}

/// <summary>The outcome of one <see cref="IRawInflater.Inflate"/> call.</summary>
/// <param name="Consumed">Input bytes used (some may sit, not yet decoded, in the inflater's bit buffer).</param>
/// <param name="Produced">Output bytes written.</param>
/// <param name="Status">Whether the stream ended or more was needed.</param>
/// <param name="DataType">zlib's <c>data_type</c> after the call: bits 0-2 = unused bits in the bit buffer, 64 = in the last block, 128 = stopped at a block boundary.</param>
public readonly record struct InflateResult(int Consumed, int Produced, InflateStatus Status, int DataType)
{
    /// <summary>The inflater stopped right at the start of a deflate block (or just after a header).</summary>
    public bool AtBlockBoundary => (DataType & 128) != 0;

    /// <summary>The block being decoded (or just finished) is marked final.</summary>
    public bool InLastBlock => (DataType & 64) != 0;

    /// <summary>How many bits of the last consumed byte are not used yet (0-7): they belong to the next block.</summary>
    public int PendingBits => DataType & 7;
}

/// <summary>
/// A resumable deflate decoder with zlib's semantics: stop at block boundaries, report the bit
/// position, restart from a bit offset (<see cref="Prime"/>) with a preset 32 KiB history
/// (<see cref="SetDictionary"/>). .NET's own compression API cannot resume a stream mid-way, so
/// this comes from native zlib (TurboOci.Interop) or any faster replacement. One instance is used
/// by one thread at a time.
/// </summary>
public interface IRawInflater : IDisposable
{
    /// <summary>The wrapper this inflater was created for.</summary>
    InflateWrapper Wrapper { get; }

    /// <summary>Forgets all state and starts a new stream with the same wrapper (zlib <c>inflateReset</c>).</summary>
    void Reset();

    /// <summary>Inserts <paramref name="bits"/> (1-7) bits of <paramref name="value"/> (low bits first) ahead of the next input (zlib <c>inflatePrime</c>).</summary>
    void Prime(int bits, int value);

    /// <summary>Presets the history window (raw streams: before the first inflate call).</summary>
    void SetDictionary(ReadOnlySpan<byte> dictionary);

    /// <summary>Decodes from <paramref name="input"/> into <paramref name="output"/>.</summary>
    /// <exception cref="InvalidDataException">The compressed data is corrupt (zlib <c>Z_DATA_ERROR</c>).</exception>
    InflateResult Inflate(ReadOnlySpan<byte> input, Span<byte> output, InflateFlush flush);
}

/// <summary>Creates inflaters; thread-safe.</summary>
public interface IInflaterFactory
{
    /// <summary>A new inflater ready for the first byte of a stream with this wrapper.</summary>
    IRawInflater Create(InflateWrapper wrapper);
}

/// <summary>
/// One-shot zlib-format (RFC 1950) compression as zlib itself does it, so that indexes holding
/// zlib-compressed pieces (overlaybd's gzip.meta windows and entry table) come out byte for byte
/// the same as the reference's. Thread-safe.
/// </summary>
public interface IZlibBlockCodec
{
    /// <summary>The largest output <see cref="Compress"/> can produce for <paramref name="length"/> input bytes.</summary>
    int CompressBound(int length);

    /// <summary>Compresses like <c>deflateInit(level)</c> + <c>deflate(Z_FINISH)</c>; returns the bytes written to <paramref name="destination"/>.</summary>
    int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level);

    /// <summary>
    /// Decompresses one complete zlib stream that must use all of <paramref name="source"/>;
    /// returns the bytes written, or −1 if the data is corrupt (adler32 included), truncated,
    /// longer than <paramref name="destination"/> or followed by other bytes.
    /// </summary>
    int TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination);
}
