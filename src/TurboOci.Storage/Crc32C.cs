using System.Buffers.Binary;
using System.Numerics;

namespace TurboOci.Storage;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as overlaybd computes it: the seed goes
/// in as is and the result comes out as is, with no pre- or post-inversion. That differs from the
/// iSCSI convention, so <c>System.IO.Hashing.Crc32</c> cannot be used. Hardware-accelerated
/// through <see cref="BitOperations.Crc32C(uint, ulong)"/> (SSE4.2 / ARMv8 CRC).
/// </summary>
public static class Crc32C
{
    /// <summary>Continues a raw CRC-32C from <paramref name="seed"/> over <paramref name="data"/>.</summary>
    public static uint Compute(uint seed, ReadOnlySpan<byte> data)
    {
        var crc = seed;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }
}
