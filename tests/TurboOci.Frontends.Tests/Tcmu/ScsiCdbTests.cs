using TurboOci.Frontends.Tcmu;

namespace TurboOci.Frontends.Tests.Tcmu;

/// <summary>CDB decoding (SBC-3/SPC-4 field positions), and the sense of every refusal.</summary>
public sealed class ScsiCdbTests
{
    [Fact]
    public void ReadAndWriteOfEveryLengthDecodeLbaBlocksAndFua()
    {
        Assert.Equal((ScsiCommandKind.Read, 0x1f_0203UL, 256u), Decode([ScsiOpcode.Read6, 0xff, 0x02, 0x03, 0x00, 0])); // 21-bit LBA; 0 blocks means 256
        Assert.Equal((ScsiCommandKind.Write, 0x010203UL, 7u), Decode([ScsiOpcode.Write6, 0x01, 0x02, 0x03, 7, 0]));
        Assert.Equal((ScsiCommandKind.Read, 0x0a0b0c0dUL, 0x0102u), Decode(Cdbs.Read10(0x0a0b0c0d, 0x0102)));
        Assert.Equal((ScsiCommandKind.Write, 0x0a0b0c0dUL, 0x01020304u), Decode([ScsiOpcode.Write12, 0, 0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4, 0, 0]));
        Assert.Equal((ScsiCommandKind.Read, 0x0102030405060708UL, 0x0a0b0c0du), Decode(Cdbs.Read16(0x0102030405060708, 0x0a0b0c0d)));
        Assert.True(ScsiCdb.Parse(Cdbs.Write10(1, 1, fua: true)).Fua);
        Assert.True(ScsiCdb.Parse(Cdbs.Write16(1, 1, fua: true)).Fua);
        Assert.False(ScsiCdb.Parse(Cdbs.Write16(1, 1)).Fua);
    }

    [Fact]
    public void DataInCommandsDecodeTheirAllocationLengthAndPage()
    {
        var inquiry = ScsiCdb.Parse(Cdbs.Inquiry(0xb0, 0x1234));
        Assert.Equal((ScsiCommandKind.Inquiry, true, (byte)0xb0, 0x1234u), (inquiry.Kind, inquiry.Evpd, inquiry.PageCode, inquiry.AllocationLength));
        var capacity = ScsiCdb.Parse(Cdbs.ReadCapacity16(0x01020304));
        Assert.Equal((ScsiCommandKind.ReadCapacity16, 0x01020304u), (capacity.Kind, capacity.AllocationLength));
        var mode = ScsiCdb.Parse(Cdbs.ModeSense6(0x08, pageControl: 1, allocation: 200));
        Assert.Equal((false, (byte)1, (byte)0x08, 200u), (mode.LongHeader, mode.PageControl, mode.PageCode, mode.AllocationLength));
        var mode10 = ScsiCdb.Parse(Cdbs.ModeSense10(0x3f, 0x0200));
        Assert.Equal((true, (byte)0x3f, 0x200u), (mode10.LongHeader, mode10.PageCode, mode10.AllocationLength));
        var report = ScsiCdb.Parse(Cdbs.ReportOpcodes(0x83, ScsiOpcode.ServiceActionIn16, 0x10, 0x00010000));
        Assert.Equal((ScsiCommandKind.ReportSupportedOpcodes, (byte)3, true, ScsiOpcode.ServiceActionIn16, (ushort)0x10, 0x10000u),
            (report.Kind, report.ReportingOptions, report.ReturnTimeouts, report.RequestedOpcode, report.RequestedServiceAction, report.AllocationLength));
    }

    [Fact]
    public void WriteSameSynchronizeCacheAndUnmapDecode()
    {
        var same = ScsiCdb.Parse(Cdbs.WriteSame16(0x10, 0x20, unmap: true, noDataOut: true));
        Assert.Equal((ScsiCommandKind.WriteSame, 0x10UL, 0x20u, true, true), (same.Kind, same.Lba, same.Blocks, same.UnmapBit, same.NoDataOutBuffer));
        var same10 = ScsiCdb.Parse([ScsiOpcode.WriteSame10, 0x08, 0, 0, 0, 5, 0, 0, 9, 0]);
        Assert.Equal((5UL, 9u, true, false), (same10.Lba, same10.Blocks, same10.UnmapBit, same10.NoDataOutBuffer));
        var sync = ScsiCdb.Parse([ScsiOpcode.SynchronizeCache10, 0, 0, 0, 1, 0, 0, 0, 2, 0]);
        Assert.Equal((ScsiCommandKind.SynchronizeCache, 256UL, 2u), (sync.Kind, sync.Lba, sync.Blocks));
        var unmap = ScsiCdb.Parse(Cdbs.Unmap(24));
        Assert.Equal((ScsiCommandKind.Unmap, 24u), (unmap.Kind, unmap.AllocationLength));
    }

    public static TheoryData<string, byte[], byte, byte> Refusals() => new()
    {
        { "empty", [], 0x20, 0x00 },
        { "unknown opcode (FORMAT UNIT)", [0x04, 0, 0, 0, 0, 0], 0x20, 0x00 },
        { "variable-length CDB group", [0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0x20, 0x00 },
        { "READ(10) cut short", [ScsiOpcode.Read10, 0, 0, 0], 0x20, 0x00 },
        { "READ(16) cut at 12 bytes", [ScsiOpcode.Read16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0x20, 0x00 },
        { "INQUIRY page without EVPD", [ScsiOpcode.Inquiry, 0, 0x80, 0, 255, 0], 0x24, 0x00 },
        { "INQUIRY CMDDT", [ScsiOpcode.Inquiry, 2, 0, 0, 255, 0], 0x24, 0x00 },
        { "READ(10) with RDPROTECT", [ScsiOpcode.Read10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0], 0x24, 0x00 },
        { "WRITE SAME of zero blocks", Cdbs.WriteSame16(0, 0, unmap: false), 0x24, 0x00 },
        { "WRITE SAME with ANCHOR", [ScsiOpcode.WriteSame10, 0x10, 0, 0, 0, 0, 0, 0, 1, 0], 0x24, 0x00 },
        { "UNMAP with ANCHOR", [ScsiOpcode.Unmap, 1, 0, 0, 0, 0, 0, 0, 24, 0], 0x24, 0x00 },
        { "reporting option 4", Cdbs.ReportOpcodes(4), 0x24, 0x00 },
        { "SERVICE ACTION IN other than READ CAPACITY(16)", [ScsiOpcode.ServiceActionIn16, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 0x20, 0x00 },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void MalformedOrUnsupportedCdbsAreIllegalRequests(string what, byte[] cdb, byte asc, byte ascq)
    {
        var error = Assert.Throws<ScsiCheckConditionException>(() => ScsiCdb.Parse(cdb));
        Assert.True(error.Sense == new ScsiSense(ScsiSenseKey.IllegalRequest, asc, ascq), $"{what}: {error.Sense}");
    }

    [Fact]
    public void FixedFormatSenseCarriesKeyAscAndAscqWhereSpcPutsThem()
    {
        var sense = new byte[ScsiSense.FixedLength + 4];
        sense.AsSpan().Fill(0xee);
        ScsiSense.LbaOutOfRange.WriteFixed(sense);
        Assert.Equal(new byte[] { 0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee }, sense);
    }

    private static (ScsiCommandKind, ulong, uint) Decode(byte[] cdb)
    {
        var command = ScsiCdb.Parse(cdb);
        return (command.Kind, command.Lba, command.Blocks);
    }
}
