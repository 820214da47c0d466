namespace TurboOci.Formats.GzipIndex;

/// <summary>
/// Joins CRC-32s (the gzip/zlib polynomial) of adjacent pieces without the bytes, by multiplying
/// by x^(8·length) modulo the polynomial, as zlib's <c>crc32_combine</c> does. Lets the reader check
/// a gzip member's trailer from the CRCs of spans it inflated independently, possibly in parallel.
/// </summary>
internal static class Crc32Combine
{
    private const uint Polynomial = 0xEDB88320;

    /// <summary>x^(2^k) mod p for k = 0..31, in the reflected bit order.</summary>
    private static readonly uint[] s_powers = BuildPowers();

    /// <summary>CRC of A‖B from crc(A), crc(B) and |B|.</summary>
    public static uint Combine(uint crcA, uint crcB, long lengthB) => Shift(crcA, lengthB) ^ crcB;

    /// <summary>crc(B) from crc(A‖B), crc(A) and |B|.</summary>
    public static uint Suffix(uint crcAB, uint crcA, long lengthB) => crcAB ^ Shift(crcA, lengthB);

    private static uint Shift(uint crc, long length) => MultiplyModP(PowerOfX(length), crc);

    private static uint PowerOfX(long bytes)
    {
        var product = 1u << 31; // x^0
        var k = 3; // bytes → bits: x^(8n) = x^(n·2^3)
        for (var n = bytes; n != 0; n >>= 1, k++)
        {
            if ((n & 1) != 0)
            {
                product = MultiplyModP(s_powers[k & 31], product);
            }
        }

        return product;
    }

    private static uint MultiplyModP(uint a, uint b)
    {
        var m = 1u << 31;
        var p = 0u;
        while (true)
        {
            if ((a & m) != 0)
            {
                p ^= b;
                if ((a & (m - 1)) == 0)
                {
                    break;
                }
            }

            m >>= 1;
            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }

        return p;
    }

    private static uint[] BuildPowers()
    {
        var table = new uint[32];
        var p = 1u << 30; // x^1
        table[0] = p;
        for (var n = 1; n < 32; n++)
        {
            table[n] = p = MultiplyModP(p, p);
        }

        return table;
    }
}
