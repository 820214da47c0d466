using TurboOci.Storage.Compression;

namespace TurboOci.Interop.Zlib;

/// <summary>An <see cref="IRawInflater"/> over the system zlib's inflate.</summary>
internal sealed unsafe class ZlibInflater : IRawInflater
{
    private readonly ZStreamHandle _handle = new(deflate: false);

    public ZlibInflater(InflateWrapper wrapper)
        : this(wrapper, wrapper == InflateWrapper.Raw ? -15 : 15 + 32)
    {
    }

    /// <summary>With zlib's own windowBits: 15 accepts the zlib wrapper only.</summary>
    internal ZlibInflater(InflateWrapper wrapper, int windowBits)
    {
        Wrapper = wrapper;
        var code = ZlibNative.InflateInit2(_handle.Stream, windowBits, ZlibNative.Version, ZlibNative.StreamSize);
        if (code != ZlibNative.ZOk)
        {
            _handle.Dispose();
            throw new InvalidOperationException($"zlib inflateInit2 failed: {ZlibNative.Describe(null, code)}");
        }

        _handle.MarkInitialized();
    }

    public InflateWrapper Wrapper { get; }

    public void Reset()
    {
        Check(ZlibNative.InflateReset(Stream), "inflateReset");
    }

    public void Prime(int bits, int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 16);
        Check(ZlibNative.InflatePrime(Stream, bits, value), "inflatePrime");
    }

    public void SetDictionary(ReadOnlySpan<byte> dictionary)
    {
        fixed (byte* dict = dictionary)
        {
            Check(ZlibNative.InflateSetDictionary(Stream, dict, (uint)dictionary.Length), "inflateSetDictionary");
        }
    }

    public InflateResult Inflate(ReadOnlySpan<byte> input, Span<byte> output, InflateFlush flush)
    {
        var stream = Stream;

        // zlib rejects a null next_out even when there is no room; point empty spans at a dummy byte.
        byte dummy = 0;
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = output)
        {
            stream->NextIn = inPtr is null ? &dummy : inPtr;
            stream->AvailIn = (uint)input.Length;
            stream->NextOut = outPtr is null ? &dummy : outPtr;
            stream->AvailOut = (uint)output.Length;
            var code = ZlibNative.Inflate(stream, flush == InflateFlush.Block ? ZlibNative.ZBlock : ZlibNative.ZNoFlush);
            var consumed = input.Length - (int)stream->AvailIn;
            var produced = output.Length - (int)stream->AvailOut;

            // Never leave pointers into pinned managed memory behind in native state.
            stream->NextIn = null;
            stream->NextOut = null;
            return code switch
            {
                ZlibNative.ZOk => new InflateResult(consumed, produced, InflateStatus.Ok, stream->DataType),
                ZlibNative.ZStreamEnd => new InflateResult(consumed, produced, InflateStatus.StreamEnd, stream->DataType),
                ZlibNative.ZBufError => new InflateResult(consumed, produced, InflateStatus.NeedsMore, stream->DataType),
                ZlibNative.ZDataError or ZlibNative.ZNeedDict => throw new InvalidDataException($"corrupt deflate data: {ZlibNative.Describe(stream, code)}"),
                _ => throw new InvalidOperationException($"zlib inflate failed: {ZlibNative.Describe(stream, code)}"),
            };
        }
    }

    public void Dispose() => _handle.Dispose();

    private ZStream* Stream
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.Stream;
        }
    }

    private void Check(int code, string function)
    {
        if (code != ZlibNative.ZOk)
        {
            throw new InvalidOperationException($"zlib {function} failed: {ZlibNative.Describe(_handle.Stream, code)}");
        }
    }
}
