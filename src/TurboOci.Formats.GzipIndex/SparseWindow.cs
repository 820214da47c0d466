using System.Buffers;
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
/// copies) from the window, and from which window position. One pass stores each position's high byte with
/// the top bit set (128..255), the other its low byte: a literal comes out the same in both, a window byte as
/// its position's two halves. Those differ except at the 128 positions whose low byte is 128 + their high byte:
/// an output byte equal in both passes is a literal or a copy of that one position, and the real output (when
/// the builder kept it) tells them apart, since a copy equals the window byte it copies. A position is
/// dropped only when that proves it unused: some bytes may be kept needlessly, never one lost.
/// </remarks>
internal static class SparseWindow
{
    private const int WindowSize = GzipIndexHeader.WindowSize;

    private static readonly byte[] s_highPattern = Pattern(i => (byte)(0x80 | (i >> 8)));
    private static readonly byte[] s_lowPattern = Pattern(i => (byte)i);

    /// <summary>
    /// Zeroes, in place, the bytes of <paramref name="window"/> that the deflate data starting at this point
    /// never reads. <paramref name="compressed"/> starts at the entry's read start (the partly used byte first
    /// when <paramref name="bits"/> &gt; 0); <paramref name="output"/> is the real output after the point as far as
    /// the builder kept it (any prefix, even empty). Returns false, leaving the window whole, when the compressed
    /// bytes given do not reach 32 KiB of output or the end of the deflate stream.
    /// </summary>
    public static bool Reduce(IInflaterFactory inflaters, byte[] window, ReadOnlySpan<byte> compressed, int bits, ReadOnlySpan<byte> output)
    {
        // One analysis per mebibyte of a layer: pooled scratch instead of 96 KiB of fresh arrays each time.
        var scratch = ArrayPool<byte>.Shared.Rent(3 * WindowSize);
        try
        {
            return Reduce(inflaters, window, compressed, bits, output, scratch.AsSpan(0, 3 * WindowSize));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static bool Reduce(IInflaterFactory inflaters, byte[] window, ReadOnlySpan<byte> compressed, int bits, ReadOnlySpan<byte> output, Span<byte> scratch)
    {
        var high = scratch[..WindowSize];
        var low = scratch.Slice(WindowSize, WindowSize);
        var used = scratch[(2 * WindowSize)..];
        used.Clear();
        using var inflater = inflaters.Create(InflateWrapper.Raw);
        var produced = Inflate(inflater, s_highPattern, compressed, bits, high);
        if (produced < 0 || Inflate(inflater, s_lowPattern, compressed, bits, low) != produced)
        {
            return false;
        }

        for (var i = 0; i < produced; i++)
        {
            if (high[i] != low[i])
            {
                // Only a window byte differs between the passes: it is position (high − 128)·256 + low.
                used[((high[i] & 0x7F) << 8) | low[i]] = 1;
            }
            else if (high[i] >= 0x80)
            {
                // A literal, or a copy of the window byte at this position: unless the real output differs from it,
                // it may be a copy, so it is kept.
                var position = ((high[i] & 0x7F) << 8) | high[i];
                if (i >= output.Length || output[i] == window[position])
                {
                    used[position] = 1;
                }
            }
        }

        for (var i = 0; i < WindowSize; i++)
        {
            if (used[i] == 0)
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
