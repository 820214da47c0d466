using TurboOci.Frontends.Tcmu;

namespace TurboOci.Frontends.Tests.Tcmu;

/// <summary>A data buffer in one array, optionally split into segments like a command's iovecs.</summary>
internal sealed class ArrayDataBuffer(byte[] bytes) : IScsiDataBuffer
{
    public ArrayDataBuffer(int length)
        : this(new byte[length])
    {
    }

    public byte[] Bytes { get; } = bytes;

    public int Length => Bytes.Length;

    public void CopyTo(int offset, Span<byte> destination) => Bytes.AsSpan(offset, destination.Length).CopyTo(destination);

    public void CopyFrom(int offset, ReadOnlySpan<byte> source) => source.CopyTo(Bytes.AsSpan(offset));
}

/// <summary>CDBs as the kernel's sd driver builds them.</summary>
internal static class Cdbs
{
    public static byte[] Read10(uint lba, ushort blocks, bool fua = false) => Rw10(ScsiOpcode.Read10, lba, blocks, fua);

    public static byte[] Write10(uint lba, ushort blocks, bool fua = false) => Rw10(ScsiOpcode.Write10, lba, blocks, fua);

    public static byte[] Read16(ulong lba, uint blocks) => Rw16(ScsiOpcode.Read16, lba, blocks, 0);

    public static byte[] Write16(ulong lba, uint blocks, bool fua = false) => Rw16(ScsiOpcode.Write16, lba, blocks, fua ? (byte)0x08 : (byte)0);

    public static byte[] WriteSame16(ulong lba, uint blocks, bool unmap, bool noDataOut = false) =>
        Rw16(ScsiOpcode.WriteSame16, lba, blocks, (byte)((unmap ? 0x08 : 0) | (noDataOut ? 0x01 : 0)));

    public static byte[] Inquiry(byte? page, ushort allocation = 255) =>
        [ScsiOpcode.Inquiry, page is null ? (byte)0 : (byte)1, page ?? 0, (byte)(allocation >> 8), (byte)allocation, 0];

    public static byte[] ModeSense6(byte page, byte pageControl = 0, byte allocation = 255) => [ScsiOpcode.ModeSense6, 0, (byte)((pageControl << 6) | page), 0, allocation, 0];

    public static byte[] ModeSense10(byte page, ushort allocation = 512) => [ScsiOpcode.ModeSense10, 0, page, 0, 0, 0, 0, (byte)(allocation >> 8), (byte)allocation, 0];

    public static byte[] ReadCapacity16(uint allocation = 32) =>
        [ScsiOpcode.ServiceActionIn16, ScsiOpcode.ReadCapacity16ServiceAction, 0, 0, 0, 0, 0, 0, 0, 0, (byte)(allocation >> 24), (byte)(allocation >> 16), (byte)(allocation >> 8), (byte)allocation, 0, 0];

    public static byte[] ReportOpcodes(byte options, byte opcode = 0, ushort serviceAction = 0, uint allocation = 4096) =>
        [ScsiOpcode.MaintenanceIn, ScsiOpcode.ReportSupportedOpcodesServiceAction, options, opcode, (byte)(serviceAction >> 8), (byte)serviceAction,
            (byte)(allocation >> 24), (byte)(allocation >> 16), (byte)(allocation >> 8), (byte)allocation, 0, 0];

    public static byte[] Unmap(ushort listLength) => [ScsiOpcode.Unmap, 0, 0, 0, 0, 0, 0, (byte)(listLength >> 8), (byte)listLength, 0];

    private static byte[] Rw10(byte opcode, uint lba, ushort blocks, bool fua) =>
        [opcode, fua ? (byte)0x08 : (byte)0, (byte)(lba >> 24), (byte)(lba >> 16), (byte)(lba >> 8), (byte)lba, 0, (byte)(blocks >> 8), (byte)blocks, 0];

    private static byte[] Rw16(byte opcode, ulong lba, uint blocks, byte flags)
    {
        var cdb = new byte[16];
        cdb[0] = opcode;
        cdb[1] = flags;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(cdb.AsSpan(2), lba);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(cdb.AsSpan(10), blocks);
        return cdb;
    }
}
