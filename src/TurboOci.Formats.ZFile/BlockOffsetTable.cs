namespace TurboOci.Formats.ZFile;

/// <summary>
/// Where each stored block starts, for n blocks plus the end of the last one, in about 4.1 bytes per
/// block instead of 8: a 64-bit base per group of 64 blocks and a 32-bit offset from that base per block
/// (64 blocks of at most ~66 KB stored each never reach 2^32). Like overlaybd's group bases + deltas,
/// but without its 64 KiB-per-group limit. A 10 GiB layer in 4 KiB blocks costs ~10 MB instead of 21.
/// </summary>
internal sealed class BlockOffsetTable
{
    private const int GroupShift = 6;

    private readonly long[] _groupBases;
    private readonly uint[] _offsets;

    /// <summary>Builds the table from the first block's position and each block's stored length.</summary>
    public BlockOffsetTable(long firstBlockStart, ReadOnlySpan<uint> storedLengths)
    {
        var entries = storedLengths.Length + 1;
        _groupBases = new long[((entries - 1) >> GroupShift) + 1];
        _offsets = new uint[entries];
        var position = firstBlockStart;
        for (var i = 0; i < entries; i++)
        {
            if ((i & ((1 << GroupShift) - 1)) == 0)
            {
                _groupBases[i >> GroupShift] = position;
            }

            _offsets[i] = checked((uint)(position - _groupBases[i >> GroupShift]));
            if (i < storedLengths.Length)
            {
                position += storedLengths[i];
            }
        }
    }

    /// <summary>Number of blocks.</summary>
    public int BlockCount => _offsets.Length - 1;

    /// <summary>Start of block <paramref name="index"/>; index = BlockCount gives the end of the last block.</summary>
    public long this[long index] => _groupBases[index >> GroupShift] + _offsets[index];
}
