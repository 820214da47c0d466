using System.Security.Cryptography;

namespace TurboOci.Registry;

/// <summary>
/// Checks fetched bytes before anyone uses them: the hook for span digests (a gzip seek index knows the
/// sha256 of every span). The remote source calls it once per fetch unit, with the unit's absolute offset.
/// </summary>
public interface IRangeVerifier
{
    /// <summary>
    /// True when every part of <paramref name="data"/> that the verifier knows a digest for matches it.
    /// Parts it knows nothing about are accepted.
    /// </summary>
    bool Verify(long offset, ReadOnlySpan<byte> data);
}

/// <summary>A verifier holding the sha256 of each fixed-size unit of a blob (the last may be shorter).</summary>
public sealed class UnitSha256Verifier : IRangeVerifier
{
    private readonly byte[][] _digests;

    public UnitSha256Verifier(int unitSize, IReadOnlyList<byte[]> digests)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(unitSize);
        UnitSize = unitSize;
        _digests = [.. digests];
    }

    public int UnitSize { get; }

    /// <summary>Computes the unit digests of a blob we trust (for tests and for publishing span digests).</summary>
    public static UnitSha256Verifier Compute(ReadOnlySpan<byte> blob, int unitSize)
    {
        var digests = new List<byte[]>();
        for (var offset = 0; offset < blob.Length; offset += unitSize)
        {
            digests.Add(SHA256.HashData(blob.Slice(offset, Math.Min(unitSize, blob.Length - offset))));
        }

        return new UnitSha256Verifier(unitSize, digests);
    }

    public bool Verify(long offset, ReadOnlySpan<byte> data)
    {
        Span<byte> actual = stackalloc byte[32];
        for (var position = 0; position < data.Length;)
        {
            var absolute = offset + position;
            var unit = absolute / UnitSize;
            var unitStart = unit * UnitSize;
            if (unitStart != absolute || unit >= _digests.Length)
            {
                // Only whole units are checkable; skip to the next boundary.
                position = (int)Math.Min(data.Length, unitStart + UnitSize - offset);
                continue;
            }

            var length = (int)Math.Min(UnitSize, data.Length - position);
            SHA256.HashData(data.Slice(position, length), actual);
            if (length == UnitSize || unit == _digests.Length - 1)
            {
                if (!actual.SequenceEqual(_digests[unit]))
                {
                    return false;
                }
            }

            position += length;
        }

        return true;
    }
}
