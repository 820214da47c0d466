using System.Buffers.Binary;
using System.Globalization;
using TurboOci.Frontends.Tcmu;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Tcmu;

/// <summary>
/// The SCSI disk over a block source: data moves byte-exact, every refusal carries the sense SBC-3 names, and the
/// identification pages say what sg3_utils' decoders (sg_inq, sg_vpd --inhex: independent of our encoder) read in them.
/// </summary>
public sealed class ScsiDiskTests
{
    private const int BlockSize = 512;
    private const long DiskSize = 4L << 20;

    [Fact]
    public async Task ReadsReturnTheSourcesBytesAndWritesLandInIt()
    {
        var (disk, bytes, guarded) = Disk(readOnly: false);
        var read = new ArrayDataBuffer(16 * BlockSize);
        Assert.Equal(ScsiResult.Good(read.Length), await disk.ExecuteAsync(Cdbs.Read16(100, 16), read));
        Assert.Equal(bytes.AsSpan(100 * BlockSize, read.Length).ToArray(), read.Bytes);

        var payload = new ArrayDataBuffer(Enumerable.Range(0, 8 * BlockSize).Select(i => (byte)(i * 7)).ToArray());
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.Write10(7, 8), payload));
        Assert.Equal(payload.Bytes, bytes.AsSpan(7 * BlockSize, payload.Length).ToArray());
        Assert.Equal(0, guarded.Flushes);
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.Write16(9, 8, fua: true), payload));
        Assert.Equal(1, guarded.Flushes); // FUA: durable before GOOD
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(new byte[] { ScsiOpcode.SynchronizeCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, new ArrayDataBuffer(0)));
        Assert.Equal(2, guarded.Flushes);
        Assert.Empty(guarded.Violations);
    }

    [Fact]
    public async Task ReadsPastTheEndAreLbaOutOfRangeAndTouchNothing()
    {
        var (disk, _, guarded) = Disk(readOnly: false);
        var blocks = (ulong)(DiskSize / BlockSize);
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.LbaOutOfRange), await disk.ExecuteAsync(Cdbs.Read16(blocks - 1, 2), new ArrayDataBuffer(2 * BlockSize)));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.LbaOutOfRange), await disk.ExecuteAsync(Cdbs.Read16(ulong.MaxValue, 1), new ArrayDataBuffer(BlockSize)));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.LbaOutOfRange), await disk.ExecuteAsync(Cdbs.WriteSame16(blocks, 1, unmap: true), new ArrayDataBuffer(BlockSize)));
        Assert.Equal(ScsiResult.Good(BlockSize), await disk.ExecuteAsync(Cdbs.Read16(blocks - 1, 1), new ArrayDataBuffer(BlockSize)));
        // A buffer that disagrees with the CDB (the kernel's block size is not ours) is refused, not half-served.
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.InvalidFieldInCdb), await disk.ExecuteAsync(Cdbs.Read10(0, 1), new ArrayDataBuffer(4096)));
        Assert.Empty(guarded.Violations);
        Assert.Equal(0, guarded.Writes);
    }

    [Fact]
    public async Task EveryWriteToAReadOnlyDiskIsDataProtect()
    {
        var (disk, bytes, guarded) = Disk(readOnly: true);
        var before = bytes.ToArray();
        foreach (var cdb in new[] { Cdbs.Write10(0, 1), Cdbs.Write16(0, 1), Cdbs.WriteSame16(0, 1, unmap: true) })
        {
            Assert.Equal(ScsiResult.CheckCondition(ScsiSense.WriteProtected), await disk.ExecuteAsync(cdb, new ArrayDataBuffer(BlockSize)));
        }

        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.WriteProtected), await disk.ExecuteAsync(Cdbs.Unmap(24), new ArrayDataBuffer(24)));
        Assert.Equal(before, bytes);
        Assert.Equal((0L, 0L), (guarded.Writes, guarded.Trims));
        Assert.Equal(ScsiSenseKey.DataProtect, ScsiSense.WriteProtected.Key);
    }

    [Fact]
    public async Task UnmapTrimsEveryDescriptorAndABadListTrimsNothing()
    {
        var (disk, bytes, guarded) = Disk(readOnly: false);
        var list = UnmapList((10, 4), (100, 1));
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.Unmap((ushort)list.Length), new ArrayDataBuffer(list)));
        Assert.True(bytes.AsSpan(10 * BlockSize, 4 * BlockSize).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(bytes.AsSpan(100 * BlockSize, BlockSize).IndexOfAnyExcept((byte)0) < 0);
        Assert.NotEqual(0, bytes[(14 * BlockSize) + 1]);
        Assert.Equal(2, guarded.Trims);

        var outside = UnmapList((20, 1), ((ulong)(DiskSize / BlockSize), 1));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.LbaOutOfRange), await disk.ExecuteAsync(Cdbs.Unmap((ushort)outside.Length), new ArrayDataBuffer(outside)));
        Assert.NotEqual(0, bytes[(20 * BlockSize) + 1]);
        var ragged = UnmapList((20, 1))[..20];
        BinaryPrimitives.WriteUInt16BigEndian(ragged.AsSpan(2), 12);
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.ParameterListLengthError), await disk.ExecuteAsync(Cdbs.Unmap((ushort)ragged.Length), new ArrayDataBuffer(ragged)));
        Assert.Equal(2, guarded.Trims);
    }

    [Fact]
    public async Task WriteSameRepeatsItsBlockOrTrimsWhenAskedToUnmapZeros()
    {
        var (disk, bytes, guarded) = Disk(readOnly: false);
        var block = Enumerable.Range(0, BlockSize).Select(i => (byte)(i ^ 0x5a)).ToArray();
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.WriteSame16(50, 3000, unmap: false), new ArrayDataBuffer(block)));
        for (var i = 0; i < 3000; i++)
        {
            Assert.True(block.AsSpan().SequenceEqual(bytes.AsSpan((50 + i) * BlockSize, BlockSize)), $"block {50 + i}");
        }

        Assert.Equal(0, guarded.Trims);
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.WriteSame16(50, 10, unmap: true), new ArrayDataBuffer(BlockSize)));
        Assert.Equal(1, guarded.Trims);
        Assert.True(bytes.AsSpan(50 * BlockSize, 10 * BlockSize).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.WriteSame16(60, 2, unmap: true, noDataOut: true), new ArrayDataBuffer(0)));
        Assert.Equal(2, guarded.Trims);
        // UNMAP with a non-zero block must write it: unmapped blocks would read zeros.
        Assert.Equal(ScsiResult.Good(), await disk.ExecuteAsync(Cdbs.WriteSame16(70, 1, unmap: true), new ArrayDataBuffer(block)));
        Assert.Equal(block, bytes.AsSpan(70 * BlockSize, BlockSize).ToArray());
    }

    [Fact]
    public async Task ASourceThatFailsMakesMediumErrorsNotGood()
    {
        var disk = new ScsiDisk(new FailingSource(DiskSize), new ScsiDiskInfo("failing", DiskSize, BlockSize, readOnly: false));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.UnrecoveredReadError), await disk.ExecuteAsync(Cdbs.Read10(0, 1), new ArrayDataBuffer(BlockSize)));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.WriteError), await disk.ExecuteAsync(Cdbs.Write10(0, 1), new ArrayDataBuffer(BlockSize)));
        Assert.Equal(ScsiSenseKey.MediumError, ScsiSense.UnrecoveredReadError.Key);
    }

    [Fact]
    public async Task CapacityModeSenseAndOpcodesDescribeTheDisk()
    {
        var (disk, _, _) = Disk(readOnly: false);
        var capacity = await DataIn(disk, Cdbs.ReadCapacity16());
        Assert.Equal((ulong)(DiskSize / BlockSize) - 1, BinaryPrimitives.ReadUInt64BigEndian(capacity));
        Assert.Equal((uint)BlockSize, BinaryPrimitives.ReadUInt32BigEndian(capacity.AsSpan(8)));
        Assert.Equal(0xc0, capacity[14]); // LBPME, LBPRZ
        var capacity10 = await DataIn(disk, new byte[] { ScsiOpcode.ReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
        Assert.Equal((uint)(DiskSize / BlockSize) - 1, BinaryPrimitives.ReadUInt32BigEndian(capacity10));
        Assert.Equal((uint)BlockSize, BinaryPrimitives.ReadUInt32BigEndian(capacity10.AsSpan(4)));

        var (readOnlyDisk, _, _) = Disk(readOnly: true);
        Assert.Equal(0x90, (await DataIn(readOnlyDisk, Cdbs.ModeSense6(0x3f)))[2]); // WP, DPOFUA
        Assert.Equal(0x10, (await DataIn(disk, Cdbs.ModeSense6(0x3f)))[2]);
        var caching = await DataIn(disk, Cdbs.ModeSense10(0x08));
        Assert.Equal(8 + 20, caching.Length);
        Assert.Equal((0x08, 0x12, 0x04), (caching[8], caching[9], caching[10] & 0x04)); // WCE on a writable disk
        Assert.Equal(0, (await DataIn(readOnlyDisk, Cdbs.ModeSense10(0x08)))[10] & 0x04);
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.InvalidFieldInCdb), await disk.ExecuteAsync(Cdbs.ModeSense6(0x1c), new ArrayDataBuffer(255)));
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.SavingParametersNotSupported), await disk.ExecuteAsync(Cdbs.ModeSense6(0x08, pageControl: 3), new ArrayDataBuffer(255)));

        var all = await DataIn(disk, Cdbs.ReportOpcodes(0));
        Assert.Equal(ScsiDiskInfo.SupportedCommands.Count * 8, (int)BinaryPrimitives.ReadUInt32BigEndian(all));
        Assert.Equal(3, (await DataIn(disk, Cdbs.ReportOpcodes(1, ScsiOpcode.WriteSame16)))[1] & 0x07);
        Assert.Equal(1, (await DataIn(disk, Cdbs.ReportOpcodes(1, 0x8f /* VERIFY(16) */)))[1] & 0x07);
        Assert.Equal(3, (await DataIn(disk, Cdbs.ReportOpcodes(2, ScsiOpcode.ServiceActionIn16, 0x10)))[1] & 0x07);
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.InvalidFieldInCdb), await disk.ExecuteAsync(Cdbs.ReportOpcodes(1, ScsiOpcode.ServiceActionIn16), new ArrayDataBuffer(64)));
    }

    [Fact]
    public async Task AShortAllocationTruncatesTheAnswerAndSaysHowMuchIsValid()
    {
        var (disk, _, _) = Disk(readOnly: false);
        var buffer = new ArrayDataBuffer(5);
        Assert.Equal(ScsiResult.Good(5), await disk.ExecuteAsync(Cdbs.Inquiry(null, allocation: 5), buffer));
        Assert.Equal(ScsiResult.Good(36), await disk.ExecuteAsync(Cdbs.Inquiry(null), new ArrayDataBuffer(255)));
    }

    [Fact]
    public async Task Sg3UtilsDecodesOurInquiryAndVitalProductDataPages()
    {
        var (disk, _, _) = Disk(readOnly: false);
        using var temp = new TempDir("turbooci-scsi-");
        string Decode(string tool, byte[] page)
        {
            var path = temp.File($"{tool}-{page[1]:x2}.hex");
            File.WriteAllText(path, string.Join(' ', page.Select(b => b.ToString("x2", CultureInfo.InvariantCulture))));
            return Tool.RunChecked(tool, $"--inhex={path}").Stdout;
        }

        var standard = Decode("sg_inq", await DataIn(disk, Cdbs.Inquiry(null)));
        Assert.Contains("Vendor identification: TURBOOCI", standard, StringComparison.Ordinal);
        Assert.Contains("Product identification: TurboOCI disk", standard, StringComparison.Ordinal);
        Assert.Contains("Product revision level: 0001", standard, StringComparison.Ordinal);
        Assert.Contains("Peripheral device type: disk", standard, StringComparison.Ordinal);
        Assert.Contains("CmdQue=1", standard, StringComparison.Ordinal);

        var supported = Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0x00)));
        foreach (var name in new[] { "Unit serial number", "Device identification", "Block limits", "Block device characteristics", "Logical block provisioning" })
        {
            Assert.Contains(name, supported, StringComparison.Ordinal);
        }

        Assert.Contains($"Unit serial number: {disk.Info.Serial}", Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0x80))), StringComparison.Ordinal);
        var identification = Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0x83)));
        Assert.Contains("designator type: T10 vendor identification", identification, StringComparison.Ordinal);
        Assert.Contains("vendor id: TURBOOCI", identification, StringComparison.Ordinal);
        Assert.Contains($"vendor specific: {disk.Info.Serial}", identification, StringComparison.Ordinal);
        Assert.Contains($"0x{disk.Info.Naa:x16}", identification, StringComparison.Ordinal);

        var limits = Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0xb0)));
        Assert.Contains($"Maximum transfer length: {ScsiDiskInfo.MaxTransferBytes / BlockSize} blocks", limits, StringComparison.Ordinal);
        Assert.Contains($"Maximum unmap LBA count: {ScsiDiskInfo.MaxUnmapBlocks}", limits, StringComparison.Ordinal);
        Assert.Contains($"Maximum unmap block descriptor count: {ScsiDiskInfo.MaxUnmapDescriptors}", limits, StringComparison.Ordinal);
        Assert.Contains("Write same non-zero (WSNZ): 1", limits, StringComparison.Ordinal);

        var provisioning = Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0xb2)));
        Assert.Contains("Unmap command supported (LBPU): 1", provisioning, StringComparison.Ordinal);
        Assert.Contains("Write same (16) with unmap bit supported (LBPWS): 1", provisioning, StringComparison.Ordinal);
        Assert.Contains("Non-rotating medium", Decode("sg_vpd", await DataIn(disk, Cdbs.Inquiry(0xb1))), StringComparison.Ordinal);

        // A read-only disk offers no provisioning page (no UNMAP), and asking for it is an illegal request.
        var (readOnlyDisk, _, _) = Disk(readOnly: true);
        Assert.DoesNotContain("Logical block provisioning", Decode("sg_vpd", await DataIn(readOnlyDisk, Cdbs.Inquiry(0x00))), StringComparison.Ordinal);
        Assert.Equal(ScsiResult.CheckCondition(ScsiSense.InvalidFieldInCdb), await readOnlyDisk.ExecuteAsync(Cdbs.Inquiry(0xb2), new ArrayDataBuffer(255)));
    }

    private static async Task<byte[]> DataIn(ScsiDisk disk, byte[] cdb)
    {
        var buffer = new ArrayDataBuffer(4096);
        var result = await disk.ExecuteAsync(cdb, buffer);
        Assert.True(result.Status == ScsiStatus.Good, $"0x{cdb[0]:x2}: {result.Sense}");
        return buffer.Bytes[..result.DataInLength];
    }

    private static byte[] UnmapList(params (ulong Lba, uint Blocks)[] ranges)
    {
        var list = new byte[8 + (16 * ranges.Length)];
        BinaryPrimitives.WriteUInt16BigEndian(list, (ushort)(list.Length - 2));
        BinaryPrimitives.WriteUInt16BigEndian(list.AsSpan(2), (ushort)(16 * ranges.Length));
        for (var i = 0; i < ranges.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(list.AsSpan(8 + (16 * i)), ranges[i].Lba);
            BinaryPrimitives.WriteUInt32BigEndian(list.AsSpan(16 + (16 * i)), ranges[i].Blocks);
        }

        return list;
    }

    private static (ScsiDisk Disk, byte[] Bytes, GuardedBlockSource Source) Disk(bool readOnly)
    {
        var bytes = new byte[DiskSize];
        new Random(7).NextBytes(bytes);
        var source = new GuardedBlockSource(new MemoryBlockSource(bytes, writable: true));
        return (new ScsiDisk(source, new ScsiDiskInfo("test-disk", DiskSize, BlockSize, readOnly)), bytes, source);
    }

    private sealed class FailingSource(long size) : BlockSource
    {
        public override long Size => size;

        public override bool CanWrite => true;

        public override int ReadAt(long offset, Span<byte> destination) => throw new IOException("the layer blob went away");

        public override void WriteAt(long offset, ReadOnlySpan<byte> source) => throw new IOException("the upper's disk is full");
    }
}
