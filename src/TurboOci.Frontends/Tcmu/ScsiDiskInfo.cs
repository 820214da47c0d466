using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TurboOci.Frontends.Tcmu;

/// <summary>
/// What the disk tells the initiator about itself, and the answers built from it (INQUIRY and its VPD pages,
/// READ CAPACITY, MODE SENSE, REPORT SUPPORTED OPERATION CODES). Every answer is built whole and then cut to the
/// allocation length by the caller, as SPC-4 says (a short allocation truncates, it is not an error).
/// </summary>
public sealed record ScsiDiskInfo
{
    public const string Vendor = "TURBOOCI";
    public const string Product = "TurboOCI disk";
    public const string Revision = "0001";

    /// <summary>The longest single transfer the disk accepts, in bytes (block limits VPD); the kernel also caps it by the data area.</summary>
    public const int MaxTransferBytes = 4 << 20;

    /// <summary>The most blocks one UNMAP descriptor or WRITE SAME may cover.</summary>
    public const uint MaxUnmapBlocks = 1u << 22;

    public const int MaxUnmapDescriptors = 64;

    public ScsiDiskInfo(string name, long sizeBytes, int blockSize, bool readOnly)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (blockSize is not (512 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "the block size must be 512 or 4096");
        }

        if (sizeBytes <= 0 || sizeBytes % blockSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes, $"the disk size must be a positive multiple of {blockSize}");
        }

        Name = name;
        SizeBytes = sizeBytes;
        BlockSize = blockSize;
        ReadOnly = readOnly;
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(name));
        Serial = Convert.ToHexStringLower(digest.AsSpan(0, 10));
        // NAA 3 (locally assigned, SPC-4 7.8.6.6.3): the top nibble 3, then 60 bits of the name's hash.
        Naa = (BinaryPrimitives.ReadUInt64BigEndian(digest.AsSpan(10)) & 0x0fff_ffff_ffff_ffffUL) | 0x3000_0000_0000_0000UL;
    }

    public string Name { get; }

    public long SizeBytes { get; }

    public int BlockSize { get; }

    public bool ReadOnly { get; }

    public ulong BlockCount => (ulong)(SizeBytes / BlockSize);

    /// <summary>The unit serial number (VPD 0x80): 20 hex digits of the name's sha256, stable across handler restarts.</summary>
    public string Serial { get; }

    /// <summary>The NAA designator (VPD 0x83) a udev rule sees as the disk's wwn.</summary>
    public ulong Naa { get; }

    /// <summary>The commands this disk implements, as REPORT SUPPORTED OPERATION CODES lists them: opcode, service action (or null), CDB length.</summary>
    public static readonly IReadOnlyList<(byte Opcode, byte? ServiceAction, int CdbLength)> SupportedCommands =
    [
        (ScsiOpcode.TestUnitReady, null, 6),
        (ScsiOpcode.RequestSense, null, 6),
        (ScsiOpcode.Read6, null, 6),
        (ScsiOpcode.Write6, null, 6),
        (ScsiOpcode.Inquiry, null, 6),
        (ScsiOpcode.ModeSense6, null, 6),
        (ScsiOpcode.StartStopUnit, null, 6),
        (ScsiOpcode.ReadCapacity10, null, 10),
        (ScsiOpcode.Read10, null, 10),
        (ScsiOpcode.Write10, null, 10),
        (ScsiOpcode.SynchronizeCache10, null, 10),
        (ScsiOpcode.WriteSame10, null, 10),
        (ScsiOpcode.Unmap, null, 10),
        (ScsiOpcode.ModeSense10, null, 10),
        (ScsiOpcode.Read16, null, 16),
        (ScsiOpcode.Write16, null, 16),
        (ScsiOpcode.SynchronizeCache16, null, 16),
        (ScsiOpcode.WriteSame16, null, 16),
        (ScsiOpcode.ServiceActionIn16, ScsiOpcode.ReadCapacity16ServiceAction, 16),
        (ScsiOpcode.MaintenanceIn, ScsiOpcode.ReportSupportedOpcodesServiceAction, 12),
        (ScsiOpcode.Read12, null, 12),
        (ScsiOpcode.Write12, null, 12),
    ];

    /// <summary>Standard INQUIRY data (SPC-4 6.6.2): a direct-access disk, SPC-4, command queueing.</summary>
    public byte[] StandardInquiry()
    {
        var data = new byte[36];
        data[0] = 0x00; // peripheral qualifier 0, device type 0 (direct access block device)
        data[2] = 0x06; // SPC-4
        data[3] = 0x12; // HISUP, response data format 2
        data[4] = (byte)(data.Length - 5);
        data[7] = 0x02; // CMDQUE
        Ascii(data.AsSpan(8, 8), Vendor);
        Ascii(data.AsSpan(16, 16), Product);
        Ascii(data.AsSpan(32, 4), Revision);
        return data;
    }

    /// <summary>A VPD page (SPC-4 7.8, SBC-3 6.6), or an ILLEGAL REQUEST for a page the disk does not have.</summary>
    public byte[] VitalProductData(byte page) => page switch
    {
        0x00 => Page(0x00, ReadOnly ? [0x00, 0x80, 0x83, 0xb0, 0xb1] : [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]),
        0x80 => Page(0x80, Encoding.ASCII.GetBytes(Serial)),
        0x83 => Page(0x83, DeviceIdentification()),
        0xb0 => Page(0xb0, BlockLimits()),
        0xb1 => Page(0xb1, BlockDeviceCharacteristics()),
        0xb2 when !ReadOnly => Page(0xb2, LogicalBlockProvisioning()),
        _ => throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"no VPD page 0x{page:x2}"),
    };

    /// <summary>READ CAPACITY(10) data: the last LBA (0xffffffff when it does not fit: use the 16-byte form) and the block length.</summary>
    public byte[] ReadCapacity10()
    {
        var data = new byte[8];
        var last = BlockCount - 1;
        BinaryPrimitives.WriteUInt32BigEndian(data, last > uint.MaxValue ? uint.MaxValue : (uint)last);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4), (uint)BlockSize);
        return data;
    }

    /// <summary>READ CAPACITY(16) data (SBC-3 5.16.2): with LBPME and LBPRZ on a writable disk (unmapped blocks read zeros).</summary>
    public byte[] ReadCapacity16()
    {
        var data = new byte[32];
        BinaryPrimitives.WriteUInt64BigEndian(data, BlockCount - 1);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8), (uint)BlockSize);
        data[14] = ReadOnly ? (byte)0 : (byte)0xc0;
        return data;
    }

    /// <summary>
    /// MODE SENSE data (SPC-4 7.5): the 4- or 8-byte header with WP set on a read-only disk and DPOFUA, no block
    /// descriptors, then the caching page (WCE on a writable disk, so the kernel sends SYNCHRONIZE CACHE) and the
    /// control page; 0x3f returns both.
    /// </summary>
    public byte[] ModeSense(ScsiCommand command)
    {
        if (command.PageControl == 3)
        {
            throw new ScsiCheckConditionException(ScsiSense.SavingParametersNotSupported, "MODE SENSE of saved values");
        }

        var changeable = command.PageControl == 1;
        var pages = (command.PageCode, command.Subpage) switch
        {
            (0x08, 0) => CachingPage(changeable),
            (0x0a, 0) => ControlPage(changeable),
            (0x3f, 0 or 0xff) => [.. CachingPage(changeable), .. ControlPage(changeable)],
            _ => throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"no mode page 0x{command.PageCode:x2}/0x{command.Subpage:x2}"),
        };

        var headerLength = command.LongHeader ? 8 : 4;
        var data = new byte[headerLength + pages.Length];
        var deviceSpecific = (byte)((ReadOnly ? 0x80 : 0) | 0x10); // WP, DPOFUA
        if (command.LongHeader)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)(data.Length - 2));
            data[3] = deviceSpecific;
        }
        else
        {
            data[0] = (byte)(data.Length - 1);
            data[2] = deviceSpecific;
        }

        pages.CopyTo(data, headerLength);
        return data;
    }

    /// <summary>REPORT SUPPORTED OPERATION CODES data (SPC-4 6.35): all commands, or one command's support and CDB usage.</summary>
    public byte[] ReportSupportedOpcodes(ScsiCommand command)
    {
        var timeoutsLength = command.ReturnTimeouts ? 12 : 0;
        if (command.ReportingOptions == 0)
        {
            var descriptorLength = 8 + timeoutsLength;
            var data = new byte[4 + (SupportedCommands.Count * descriptorLength)];
            BinaryPrimitives.WriteUInt32BigEndian(data, (uint)(data.Length - 4));
            for (var i = 0; i < SupportedCommands.Count; i++)
            {
                var (opcode, serviceAction, cdbLength) = SupportedCommands[i];
                var descriptor = data.AsSpan(4 + (i * descriptorLength), descriptorLength);
                descriptor[0] = opcode;
                BinaryPrimitives.WriteUInt16BigEndian(descriptor[2..], serviceAction ?? 0);
                descriptor[5] = (byte)((serviceAction is null ? 0 : 0x01) | (command.ReturnTimeouts ? 0x02 : 0)); // SERVACTV, CTDP
                BinaryPrimitives.WriteUInt16BigEndian(descriptor[6..], (ushort)cdbLength);
                if (command.ReturnTimeouts)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(descriptor[8..], 0x0a); // timeouts descriptor length; no timeouts given
                }
            }

            return data;
        }

        var withServiceAction = SupportedCommands.Any(c => c.Opcode == command.RequestedOpcode && c.ServiceAction is not null);
        if ((command.ReportingOptions == 1 && withServiceAction) || (command.ReportingOptions == 2 && !withServiceAction && IsKnownOpcode(command.RequestedOpcode)))
        {
            // Option 1 names an opcode that has service actions, option 2 one that has none: invalid (SPC-4 table 255).
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"reporting option {command.ReportingOptions} for opcode 0x{command.RequestedOpcode:x2}");
        }

        var match = SupportedCommands.FirstOrDefault(c => c.Opcode == command.RequestedOpcode
            && (c.ServiceAction is null || (command.ReportingOptions != 1 && c.ServiceAction == command.RequestedServiceAction)));
        if (match.CdbLength == 0)
        {
            return new byte[] { 0, 0x01, 0, 0 }; // SUPPORT 001b: not supported
        }

        var one = new byte[4 + match.CdbLength + timeoutsLength];
        one[1] = (byte)(0x03 | (command.ReturnTimeouts ? 0x80 : 0)); // SUPPORT 011b: as the standard says; CTDP
        BinaryPrimitives.WriteUInt16BigEndian(one.AsSpan(2), (ushort)match.CdbLength);
        var usage = one.AsSpan(4, match.CdbLength);
        usage.Fill(0xff);
        usage[0] = match.Opcode;
        if (match.ServiceAction is { } action)
        {
            usage[1] = action;
        }

        usage[^1] = 0x00; // no control byte bits (NACA, link) are used
        if (command.ReturnTimeouts)
        {
            BinaryPrimitives.WriteUInt16BigEndian(one.AsSpan(4 + match.CdbLength), 0x0a);
        }

        return one;
    }

    /// <summary>REQUEST SENSE data: no sense pending (errors are returned with their command, autosense).</summary>
    public static byte[] NoSense()
    {
        var data = new byte[ScsiSense.FixedLength];
        new ScsiSense(ScsiSenseKey.NoSense, 0, 0).WriteFixed(data);
        return data;
    }

    private static bool IsKnownOpcode(byte opcode) => SupportedCommands.Any(c => c.Opcode == opcode);

    private byte[] DeviceIdentification()
    {
        // A T10 vendor id designator (vendor + serial, ASCII) and an NAA designator (binary), both of the logical unit.
        var t10 = Encoding.ASCII.GetBytes(Vendor + Serial);
        var data = new byte[4 + t10.Length + 4 + 8];
        data[0] = 0x02; // code set ASCII
        data[1] = 0x01; // association: logical unit; designator type: T10 vendor id
        data[3] = (byte)t10.Length;
        t10.CopyTo(data, 4);
        var naa = data.AsSpan(4 + t10.Length);
        naa[0] = 0x01; // code set binary
        naa[1] = 0x03; // association: logical unit; designator type: NAA
        naa[3] = 8;
        BinaryPrimitives.WriteUInt64BigEndian(naa[4..], Naa);
        return data;
    }

    private byte[] BlockLimits()
    {
        var data = new byte[0x3c];
        data[0] = 0x01; // WSNZ: WRITE SAME of zero blocks is refused
        var maxTransferBlocks = (uint)(MaxTransferBytes / BlockSize);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), 1); // optimal transfer length granularity
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4), maxTransferBlocks);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8), maxTransferBlocks);
        if (!ReadOnly)
        {
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(16), MaxUnmapBlocks);
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(20), MaxUnmapDescriptors);
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(24), (uint)(4096 / BlockSize)); // optimal unmap granularity: 4 KiB
            BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(32), MaxUnmapBlocks); // maximum WRITE SAME length
        }

        return data;
    }

    private static byte[] BlockDeviceCharacteristics()
    {
        var data = new byte[0x3c];
        BinaryPrimitives.WriteUInt16BigEndian(data, 1); // medium rotation rate 1: non-rotating
        return data;
    }

    private static byte[] LogicalBlockProvisioning()
    {
        // LBPU (UNMAP), LBPWS (WRITE SAME(16) with UNMAP), LBPWS10, LBPRZ 001b (unmapped blocks read zeros); thin provisioned.
        return [0x00, 0x80 | 0x40 | 0x20 | 0x04, 0x02, 0x00];
    }

    private byte[] CachingPage(bool changeable)
    {
        var page = new byte[20];
        page[0] = 0x08;
        page[1] = 0x12;
        if (!changeable && !ReadOnly)
        {
            page[2] = 0x04; // WCE: writes may be cached until SYNCHRONIZE CACHE (the writable upper is flushed then)
        }

        return page;
    }

    private static byte[] ControlPage(bool changeable)
    {
        var page = new byte[12];
        page[0] = 0x0a;
        page[1] = 0x0a;
        if (!changeable)
        {
            page[3] = 0x10; // queue algorithm modifier 1: unrestricted reordering; D_SENSE 0 (fixed-format sense)
        }

        return page;
    }

    private static byte[] Page(byte code, byte[] body)
    {
        var data = new byte[4 + body.Length];
        data[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(2), (ushort)body.Length);
        body.CopyTo(data, 4);
        return data;
    }

    private static void Ascii(Span<byte> field, string text)
    {
        field.Fill((byte)' ');
        Encoding.ASCII.GetBytes(text.AsSpan(0, Math.Min(text.Length, field.Length)), field);
    }
}
