using TurboOci.Storage.Compression;

namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// Finds which bytes of an access point's 32 KiB window the deflate stream after the point actually reads,
/// and zeroes the others, so the stored window compresses far smaller. A reader (overlaybd's included)
/// installs the window with <c>inflateSetDictionary</c> and inflates from the point: every byte it copies out
/// of the window is one we kept, so its output is the same byte for byte. Only the first 32 KiB of output
/// can reach back into the window (a deflate distance is at most 32 768), so that much is analysed.
/// </summary>
/// <remarks>
/// The analysis needs no deflate decoder of its own: inflating the same compressed bytes over windows that
/// hold a position pattern tells, for every output byte, whether it came (directly or through a chain of
/// copies) from the window, and from which window position. Two windows that differ at every position
/// (the high byte of the position, and its complement) separate window-derived output bytes from literals;
/// a third (the low byte) completes the position.
/// </remarks>
internal static class SparseWindow
{
    private const int WindowSize = GzipIndexHeader.WindowSize;

    private static readonly byte[] s_highPattern = Pattern(i => (byte)(i >> 8));
    private static readonly byte[] s_highComplement = Pattern(i => (byte)~(i >> 8));
    private static readonly byte[] s_lowPattern = Pattern(i => (byte)i);

    /// <summary>
    /// Zeroes, in place, the bytes of <paramref name="window"/> that the deflate data starting at this point
    /// never reads. <paramref name="compressed"/> starts at the entry's read start (the partly used byte first
    /// when <paramref name="bits"/> &gt; 0). Returns false, leaving the window whole, when the compressed bytes
    /// given do not reach 32 KiB of output or the end of the deflate stream.
    /// </summary>
    public static bool Reduce(IInflaterFactory inflaters, byte[] window, ReadOnlySpan<byte> compressed, int bits)
    {
        var high = new byte[WindowSize];
        var complement = new byte[WindowSize];
        var low = new byte[WindowSize];
        using var inflater = inflaters.Create(InflateWrapper.Raw);
        var produced = Inflate(inflater, s_highPattern, compressed, bits, high);
        if (produced < 0
            || Inflate(inflater, s_highComplement, compressed, bits, complement) != produced
            || Inflate(inflater, s_lowPattern, compressed, bits, low) != produced)
        {
            return false;
        }

        var used = new bool[WindowSize];
        for (var i = 0; i < produced; i++)
        {
            if (high[i] != complement[i])
            {
                used[(high[i] << 8) | low[i]] = true;
            }
        }

        for (var i = 0; i < WindowSize; i++)
        {
            if (!used[i])
            {
                window[i] = 0;
            }
        }

        return true;
    }

    /// <summary>Inflates up to 32 KiB over <paramref name="dictionary"/>; −1 when the input ends first.</summary>
    private static int Inflate(IRawInflater inflater, byte[] dictionary, ReadOnlySpan<byte> compressed, int bits, Span<byte> output)
    {
        inflater.Reset();
        var input = compressed;
        if (bits > 0)
        {
            inflater.Prime(bits, input[0] >> (8 - bits));
            input = input[1..];
        }

        inflater.SetDictionary(dictionary);
        var produced = 0;
        while (produced < output.Length)
        {
            InflateResult result;
            try
            {
                result = inflater.Inflate(input, output[produced..], InflateFlush.NoFlush);
            }
            catch (InvalidDataException)
            {
                // The builder's own inflate of the same bytes succeeded, so this cannot happen; keep the whole window if it does.
                return -1;
            }

            produced += result.Produced;
            input = input[result.Consumed..];
            if (result.Status == InflateStatus.StreamEnd)
            {
                return produced;
            }

            if (result.Consumed == 0 && result.Produced == 0)
            {
                return -1;
            }
        }

        return produced;
    }

    private static byte[] Pattern(Func<int, byte> at)
    {
        var pattern = new byte[WindowSize];
        for (var i = 0; i < pattern.Length; i++)
        {
            pattern[i] = at(i);
        }

        return pattern;
    }
}
