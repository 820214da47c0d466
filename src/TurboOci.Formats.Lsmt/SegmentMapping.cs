using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// One 16-byte LSMT index entry (formats doc §1.3), kept in memory exactly as on disk so an index
/// is a flat array that loads with one copy: <c>lo</c> = offset (bits 0–49) | length (50–63),
/// <c>hi</c> = moffset (0–54) | zeroed (55) | tag (56–63). All quantities are in 512-byte sectors.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 8)]
public readonly struct SegmentMapping : IEquatable<SegmentMapping>
{
    public const int Size = 16;

    private const int LengthShift = 50;
    private const ulong OffsetMask = (1UL << 50) - 1;
    private const ulong MOffsetMask = (1UL << 55) - 1;
    private const ulong ZeroedBit = 1UL << 55;
    private const int TagShift = 56;

    private readonly ulong _lo;
    private readonly ulong _hi;

    private SegmentMapping(ulong lo, ulong hi)
    {
        _lo = lo;
        _hi = hi;
    }

    /// <summary>Builds an entry; throws if a field does not fit its bit width.</summary>
    public SegmentMapping(ulong offset, uint length, ulong mappedOffset, bool zeroed = false, byte tag = 0)
    {
        if (offset > OffsetMask || length > LsmtConstants.MaxMappingLength || mappedOffset > MOffsetMask)
        {
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"mapping {{offset {offset}, length {length}, moffset {mappedOffset}}} does not fit the 50/14/55-bit fields");
        }

        _lo = offset | ((ulong)length << LengthShift);
        _hi = mappedOffset | (zeroed ? ZeroedBit : 0) | ((ulong)tag << TagShift);
    }

    /// <summary>A padding entry as overlaybd writes it: offset 2^50−1, everything else 0.</summary>
    public static SegmentMapping Padding => new(LsmtConstants.InvalidOffset, 0);

    /// <summary>Logical start on the virtual device, in sectors.</summary>
    public ulong Offset
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _lo & OffsetMask;
    }

    /// <summary>Length in sectors, 0…16383.</summary>
    public uint Length
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (uint)(_lo >> LengthShift);
    }

    /// <summary>Logical end (exclusive), in sectors.</summary>
    public ulong End
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_lo & OffsetMask) + (_lo >> LengthShift);
    }

    /// <summary>Start in the backing file chosen by <see cref="Tag"/>, in sectors.</summary>
    public ulong MappedOffset => _hi & MOffsetMask;

    /// <summary>End in the backing file: for a zeroed entry just its position marker.</summary>
    public ulong MappedEnd => Zeroed ? MappedOffset : MappedOffset + Length;

    public bool Zeroed => (_hi & ZeroedBit) != 0;

    public byte Tag => (byte)(_hi >> TagShift);

    public bool IsPadding => Offset == LsmtConstants.InvalidOffset;

    public SegmentMapping WithTag(byte tag) => new(_lo, (_hi & ~(0xFFUL << TagShift)) | ((ulong)tag << TagShift));

    public SegmentMapping WithMappedOffset(ulong mappedOffset) => new(Offset, Length, mappedOffset, Zeroed, Tag);

    /// <summary>The part of this entry inside [<paramref name="start"/>, <paramref name="end"/>) (which must overlap it).
    /// Cutting the front of a data entry advances its moffset; a zeroed entry's moffset stays put (overlaybd's rule).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SegmentMapping Trim(ulong start, ulong end)
    {
        var offset = Offset;
        var newStart = Math.Max(offset, start);
        var newEnd = Math.Min(End, end);
        var moffset = Zeroed ? MappedOffset : MappedOffset + (newStart - offset);
        return new SegmentMapping(newStart | ((newEnd - newStart) << LengthShift), (_hi & ~MOffsetMask) | moffset);
    }

    public static SegmentMapping Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(source), BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _lo);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _hi);
    }

    /// <summary>Reinterprets little-endian index bytes as entries (no copy on little-endian hosts).</summary>
    public static SegmentMapping[] ReadAll(ReadOnlySpan<byte> bytes)
    {
        var entries = new SegmentMapping[bytes.Length / Size];
        if (BitConverter.IsLittleEndian)
        {
            bytes[..(entries.Length * Size)].CopyTo(MemoryMarshal.AsBytes(entries.AsSpan()));
        }
        else
        {
            for (var i = 0; i < entries.Length; i++)
            {
                entries[i] = Read(bytes[(i * Size)..]);
            }
        }

        return entries;
    }

    public static void WriteAll(ReadOnlySpan<SegmentMapping> entries, Span<byte> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(entries).CopyTo(destination);
            return;
        }

        for (var i = 0; i < entries.Length; i++)
        {
            entries[i].Write(destination[(i * Size)..]);
        }
    }

    public bool Equals(SegmentMapping other) => _lo == other._lo && _hi == other._hi;

    public override bool Equals(object? obj) => obj is SegmentMapping other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_lo, _hi);

    public static bool operator ==(SegmentMapping left, SegmentMapping right) => left.Equals(right);

    public static bool operator !=(SegmentMapping left, SegmentMapping right) => !left.Equals(right);

    public override string ToString() =>
        $"{{{Offset},{Length},{MappedOffset}{(Zeroed ? ",zeroed" : string.Empty)}{(Tag != 0 ? $",tag {Tag}" : string.Empty)}}}";
}
