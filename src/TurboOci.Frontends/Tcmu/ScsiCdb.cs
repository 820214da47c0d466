using System.Buffers.Binary;

namespace TurboOci.Frontends.Tcmu;

/// <summary>SCSI operation codes a TCMU disk answers (SBC-3, SPC-4).</summary>
public static class ScsiOpcode
{
    public const byte TestUnitReady = 0x00;
    public const byte RequestSense = 0x03;
    public const byte Read6 = 0x08;
    public const byte Write6 = 0x0a;
    public const byte Inquiry = 0x12;
    public const byte ModeSense6 = 0x1a;
    public const byte StartStopUnit = 0x1b;
    public const byte ReadCapacity10 = 0x25;
    public const byte Read10 = 0x28;
    public const byte Write10 = 0x2a;
    public const byte SynchronizeCache10 = 0x35;
    public const byte WriteSame10 = 0x41;
    public const byte Unmap = 0x42;
    public const byte ModeSense10 = 0x5a;
    public const byte Read16 = 0x88;
    public const byte Write16 = 0x8a;
    public const byte SynchronizeCache16 = 0x91;
    public const byte WriteSame16 = 0x93;
    public const byte ServiceActionIn16 = 0x9e;
    public const byte MaintenanceIn = 0xa3;
    public const byte Read12 = 0xa8;
    public const byte Write12 = 0xaa;

    /// <summary>SERVICE ACTION IN(16) service action of READ CAPACITY(16).</summary>
    public const byte ReadCapacity16ServiceAction = 0x10;

    /// <summary>MAINTENANCE IN service action of REPORT SUPPORTED OPERATION CODES.</summary>
    public const byte ReportSupportedOpcodesServiceAction = 0x0c;

    /// <summary>The CDB length of each opcode's group (SPC-4 4.2.5.1): 6, 10, 10, reserved, 16, 12.</summary>
    public static int CdbLength(byte opcode) => (opcode >> 5) switch
    {
        0 => 6,
        1 or 2 => 10,
        4 => 16,
        5 => 12,
        _ => 0,
    };
}

/// <summary>What a command asks for, as <see cref="ScsiCdb.Parse"/> decoded it.</summary>
public enum ScsiCommandKind
{
    TestUnitReady,
    RequestSense,
    StartStopUnit,
    Inquiry,
    ReadCapacity10,
    ReadCapacity16,
    ModeSense,
    Read,
    Write,
    SynchronizeCache,
    Unmap,
    WriteSame,
    ReportSupportedOpcodes,
}

/// <summary>A decoded CDB. Fields a kind does not use are zero.</summary>
public readonly record struct ScsiCommand
{
    public ScsiCommandKind Kind { get; init; }

    public byte Opcode { get; init; }

    /// <summary>First logical block (READ, WRITE, WRITE SAME, SYNCHRONIZE CACHE).</summary>
    public ulong Lba { get; init; }

    /// <summary>Number of logical blocks; for SYNCHRONIZE CACHE 0 means "to the end".</summary>
    public uint Blocks { get; init; }

    /// <summary>Force unit access: the write must be durable before GOOD.</summary>
    public bool Fua { get; init; }

    /// <summary>WRITE SAME with UNMAP: the blocks may be deallocated (they read back as zeros).</summary>
    public bool UnmapBit { get; init; }

    /// <summary>WRITE SAME(16) NDOB: no data-out buffer, the block is zeros.</summary>
    public bool NoDataOutBuffer { get; init; }

    /// <summary>How many bytes the initiator accepts (data-in commands), or UNMAP's parameter list length.</summary>
    public uint AllocationLength { get; init; }

    /// <summary>INQUIRY: a VPD page is asked for.</summary>
    public bool Evpd { get; init; }

    /// <summary>INQUIRY VPD page, or MODE SENSE page code.</summary>
    public byte PageCode { get; init; }

    /// <summary>MODE SENSE: sub-page code.</summary>
    public byte Subpage { get; init; }

    /// <summary>MODE SENSE page control: 0 current, 1 changeable, 2 default, 3 saved.</summary>
    public byte PageControl { get; init; }

    /// <summary>MODE SENSE(10): the response has the 8-byte header.</summary>
    public bool LongHeader { get; init; }

    /// <summary>REPORT SUPPORTED OPERATION CODES reporting options (0: all; 1, 2, 3: one command).</summary>
    public byte ReportingOptions { get; init; }

    /// <summary>REPORT SUPPORTED OPERATION CODES: include command timeouts descriptors.</summary>
    public bool ReturnTimeouts { get; init; }

    public byte RequestedOpcode { get; init; }

    public ushort RequestedServiceAction { get; init; }
}

/// <summary>
/// Decodes command descriptor blocks (SBC-3, SPC-4). Pure: every field the kernel can send is bounds-checked
/// here; an unknown opcode or a malformed field becomes a <see cref="ScsiCheckConditionException"/> with the
/// ILLEGAL REQUEST sense the standard names.
/// </summary>
public static class ScsiCdb
{
    public static ScsiCommand Parse(ReadOnlySpan<byte> cdb)
    {
        if (cdb.IsEmpty)
        {
            throw new ScsiCheckConditionException(ScsiSense.InvalidOperationCode, "empty CDB");
        }

        var opcode = cdb[0];
        var length = ScsiOpcode.CdbLength(opcode);
        if (length == 0 || cdb.Length < length)
        {
            throw new ScsiCheckConditionException(ScsiSense.InvalidOperationCode, $"opcode 0x{opcode:x2}: CDB of {cdb.Length} bytes");
        }

        cdb = cdb[..length];
        var command = new ScsiCommand { Opcode = opcode };
        return opcode switch
        {
            ScsiOpcode.TestUnitReady => command with { Kind = ScsiCommandKind.TestUnitReady },
            ScsiOpcode.RequestSense => command with { Kind = ScsiCommandKind.RequestSense, AllocationLength = cdb[4] },
            ScsiOpcode.StartStopUnit => command with { Kind = ScsiCommandKind.StartStopUnit },
            ScsiOpcode.Inquiry => ParseInquiry(cdb, command),
            ScsiOpcode.ReadCapacity10 => command with { Kind = ScsiCommandKind.ReadCapacity10, AllocationLength = 8 },
            ScsiOpcode.ServiceActionIn16 when (cdb[1] & 0x1f) == ScsiOpcode.ReadCapacity16ServiceAction =>
                command with { Kind = ScsiCommandKind.ReadCapacity16, AllocationLength = BinaryPrimitives.ReadUInt32BigEndian(cdb[10..]) },
            ScsiOpcode.ModeSense6 => ParseModeSense(cdb, command, longHeader: false, allocation: cdb[4]),
            ScsiOpcode.ModeSense10 => ParseModeSense(cdb, command, longHeader: true, allocation: BinaryPrimitives.ReadUInt16BigEndian(cdb[7..])),
            ScsiOpcode.Read6 or ScsiOpcode.Write6 => command with
            {
                Kind = opcode == ScsiOpcode.Read6 ? ScsiCommandKind.Read : ScsiCommandKind.Write,
                Lba = (uint)(((cdb[1] & 0x1f) << 16) | (cdb[2] << 8) | cdb[3]),
                Blocks = cdb[4] == 0 ? 256u : cdb[4], // SBC-3: a transfer length of 0 means 256 blocks in the 6-byte form
            },
            ScsiOpcode.Read10 or ScsiOpcode.Write10 => ReadWrite(command, cdb, BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]), BinaryPrimitives.ReadUInt16BigEndian(cdb[7..])),
            ScsiOpcode.Read12 or ScsiOpcode.Write12 => ReadWrite(command, cdb, BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]), BinaryPrimitives.ReadUInt32BigEndian(cdb[6..])),
            ScsiOpcode.Read16 or ScsiOpcode.Write16 => ReadWrite(command, cdb, BinaryPrimitives.ReadUInt64BigEndian(cdb[2..]), BinaryPrimitives.ReadUInt32BigEndian(cdb[10..])),
            ScsiOpcode.SynchronizeCache10 => command with
            {
                Kind = ScsiCommandKind.SynchronizeCache,
                Lba = BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]),
                Blocks = BinaryPrimitives.ReadUInt16BigEndian(cdb[7..]),
            },
            ScsiOpcode.SynchronizeCache16 => command with
            {
                Kind = ScsiCommandKind.SynchronizeCache,
                Lba = BinaryPrimitives.ReadUInt64BigEndian(cdb[2..]),
                Blocks = BinaryPrimitives.ReadUInt32BigEndian(cdb[10..]),
            },
            ScsiOpcode.Unmap => (cdb[1] & 0x01) != 0
                ? throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, "UNMAP with ANCHOR")
                : command with { Kind = ScsiCommandKind.Unmap, AllocationLength = BinaryPrimitives.ReadUInt16BigEndian(cdb[7..]) },
            ScsiOpcode.WriteSame10 => WriteSame(command, cdb, BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]), BinaryPrimitives.ReadUInt16BigEndian(cdb[7..]), noDataOut: false),
            ScsiOpcode.WriteSame16 => WriteSame(command, cdb, BinaryPrimitives.ReadUInt64BigEndian(cdb[2..]), BinaryPrimitives.ReadUInt32BigEndian(cdb[10..]), noDataOut: (cdb[1] & 0x01) != 0),
            ScsiOpcode.MaintenanceIn when (cdb[1] & 0x1f) == ScsiOpcode.ReportSupportedOpcodesServiceAction => command with
            {
                Kind = ScsiCommandKind.ReportSupportedOpcodes,
                ReportingOptions = (byte)(cdb[2] & 0x07) is var options && options <= 3
                    ? options
                    : throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"REPORT SUPPORTED OPERATION CODES reporting options {options}"),
                ReturnTimeouts = (cdb[2] & 0x80) != 0,
                RequestedOpcode = cdb[3],
                RequestedServiceAction = BinaryPrimitives.ReadUInt16BigEndian(cdb[4..]),
                AllocationLength = BinaryPrimitives.ReadUInt32BigEndian(cdb[6..]),
            },
            _ => throw new ScsiCheckConditionException(ScsiSense.InvalidOperationCode, $"opcode 0x{opcode:x2} is not supported"),
        };
    }

    private static ScsiCommand ParseInquiry(ReadOnlySpan<byte> cdb, ScsiCommand command)
    {
        var evpd = (cdb[1] & 0x01) != 0;
        if ((cdb[1] & 0x02) != 0 || (!evpd && cdb[2] != 0))
        {
            // CMDDT is obsolete; a page code without EVPD is invalid (SPC-4 6.6.1).
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, "INQUIRY with CMDDT or a page code without EVPD");
        }

        return command with { Kind = ScsiCommandKind.Inquiry, Evpd = evpd, PageCode = cdb[2], AllocationLength = BinaryPrimitives.ReadUInt16BigEndian(cdb[3..]) };
    }

    private static ScsiCommand ParseModeSense(ReadOnlySpan<byte> cdb, ScsiCommand command, bool longHeader, uint allocation) => command with
    {
        Kind = ScsiCommandKind.ModeSense,
        LongHeader = longHeader,
        PageControl = (byte)(cdb[2] >> 6),
        PageCode = (byte)(cdb[2] & 0x3f),
        Subpage = cdb[3],
        AllocationLength = allocation,
    };

    private static ScsiCommand ReadWrite(ScsiCommand command, ReadOnlySpan<byte> cdb, ulong lba, uint blocks)
    {
        if ((cdb[1] & 0xe0) != 0)
        {
            // RDPROTECT/WRPROTECT: the disk has no protection information.
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, "protection information asked of a disk without it");
        }

        var isRead = command.Opcode is ScsiOpcode.Read10 or ScsiOpcode.Read12 or ScsiOpcode.Read16;
        return command with { Kind = isRead ? ScsiCommandKind.Read : ScsiCommandKind.Write, Lba = lba, Blocks = blocks, Fua = (cdb[1] & 0x08) != 0 };
    }

    private static ScsiCommand WriteSame(ScsiCommand command, ReadOnlySpan<byte> cdb, ulong lba, uint blocks, bool noDataOut)
    {
        if ((cdb[1] & 0xf6) != 0 || blocks == 0)
        {
            // WRPROTECT, ANCHOR and the obsolete PBDATA/LBDATA are not supported; a length of 0 is refused (WSNZ=1).
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, "WRITE SAME with protection, anchor, LBDATA/PBDATA, or no blocks");
        }

        return command with { Kind = ScsiCommandKind.WriteSame, Lba = lba, Blocks = blocks, UnmapBit = (cdb[1] & 0x08) != 0, NoDataOutBuffer = noDataOut };
    }
}
