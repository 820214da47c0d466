using System.Runtime.InteropServices;

namespace TurboOci.Interop.Linux;

// The ublk control and I/O command structures (linux/ublk_cmd.h). KernelAbiTests compiles the
// kernel header and checks every size and offset here.

/// <summary>Constants of the ublk driver.</summary>
public static class UblkConstants
{
    public const uint CommandGetQueueAffinity = 0x01;
    public const uint CommandGetDeviceInfo = 0x02;
    public const uint CommandAddDevice = 0x04;
    public const uint CommandDeleteDevice = 0x05;
    public const uint CommandStartDevice = 0x06;
    public const uint CommandStopDevice = 0x07;
    public const uint CommandSetParameters = 0x08;
    public const uint CommandGetParameters = 0x09;
    public const uint CommandStartUserRecovery = 0x10;
    public const uint CommandEndUserRecovery = 0x11;

    public const uint IoFetchRequest = 0x20;
    public const uint IoCommitAndFetchRequest = 0x21;
    public const uint IoNeedGetData = 0x22;

    public const byte IoOpRead = 0;
    public const byte IoOpWrite = 1;
    public const byte IoOpFlush = 2;
    public const byte IoOpDiscard = 3;
    public const byte IoOpWriteSame = 4;
    public const byte IoOpWriteZeroes = 5;

    public const uint IoFlagFua = 1u << 13;
    public const uint IoFlagNoUnmap = 1u << 15;

    public const uint ParameterTypeBasic = 1 << 0;
    public const uint ParameterTypeDiscard = 1 << 1;

    public const uint AttributeReadOnly = 1 << 0;
    public const uint AttributeRotational = 1 << 1;
    public const uint AttributeVolatileCache = 1 << 2;
    public const uint AttributeFua = 1 << 3;

    public const int MaxQueueDepth = 4096;

    /// <summary>UBLK_IO_RES_OK: a FETCH or COMMIT_AND_FETCH completed because a request waits in its descriptor.</summary>
    public const int IoResultOk = 0;

    /// <summary>UBLK_IO_RES_ABORT (-ENODEV): the device is going away; the command will not be completed again.</summary>
    public const int IoResultAbort = -(int)Errno.ENODEV;

    /// <summary>UBLKSRV_CMD_BUF_OFFSET: the mmap offset of queue 0's descriptor array on /dev/ublkcN.</summary>
    public const long CommandBufferOffset = 0;

    /// <summary>UBLK_F_CMD_IOCTL_ENCODE: we send the ioctl-encoded opcodes (UBLK_U_*).</summary>
    public const ulong FlagCommandIoctlEncode = 1ul << 6;

    /// <summary>_IOC_WRITE | _IOC_READ in the direction bits of an ioctl number.</summary>
    private const uint IoctlReadWrite = 3u << 30;

    /// <summary>The ioctl-encoded control opcode, UBLK_U_CMD_x = _IOWR('u', x, struct ublksrv_ctrl_cmd).</summary>
    public static uint EncodeControl(uint command) => EncodeReadWrite(command, 32);

    /// <summary>The ioctl-encoded I/O opcode, UBLK_U_IO_x = _IOWR('u', x, struct ublksrv_io_cmd).</summary>
    public static uint EncodeIo(uint command) => EncodeReadWrite(command, 16);

    private static uint EncodeReadWrite(uint number, uint size) => IoctlReadWrite | (size << 16) | ((uint)'u' << 8) | number;
}

/// <summary>struct ublksrv_ctrl_cmd: the payload of a control command on /dev/ublk-control.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct UblkControlCommand
{
    public uint DeviceId;
    public ushort QueueId;
    public ushort Length;
    public ulong Address;
    public fixed ulong Data[2];
}

/// <summary>struct ublksrv_ctrl_dev_info.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkDeviceInfo
{
    public ushort HardwareQueues;
    public ushort QueueDepth;
    public ushort State;
    public ushort Pad0;
    public uint MaxIoBufferBytes;
    public uint DeviceId;
    public int ServerPid;
    public uint Pad1;
    public ulong Flags;
    public ulong ServerFlags;
    public ulong Reserved0;
    public ulong Reserved1;
    public ulong Reserved2;
}

/// <summary>struct ublksrv_io_desc: one slot of a queue's descriptor array, mapped read-only from the device.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkIoDescriptor
{
    /// <summary>Bits 0-7 the operation, 8-31 its flags.</summary>
    public uint OpFlags;
    public uint Sectors;
    public ulong StartSector;
    public ulong Address;

    public readonly byte Op => (byte)(OpFlags & 0xFF);
}

/// <summary>struct ublksrv_io_cmd: the payload of FETCH_REQ and COMMIT_AND_FETCH_REQ io_uring commands.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkIoCommand
{
    public ushort QueueId;
    public ushort Tag;
    public int Result;
    public ulong Address;
}

/// <summary>struct ublk_param_basic.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkBasicParameters
{
    public uint Attributes;
    public byte LogicalBlockShift;
    public byte PhysicalBlockShift;
    public byte IoOptimalShift;
    public byte IoMinimumShift;
    public uint MaxSectors;
    public uint ChunkSectors;
    public ulong DeviceSectors;
    public ulong VirtualBoundaryMask;
}

/// <summary>struct ublk_param_discard.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkDiscardParameters
{
    public uint DiscardAlignment;
    public uint DiscardGranularity;
    public uint MaxDiscardSectors;
    public uint MaxWriteZeroesSectors;
    public ushort MaxDiscardSegments;
    public ushort Reserved0;
}

/// <summary>struct ublk_params, for SET_PARAMS and GET_PARAMS.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UblkParameters
{
    public uint Length;
    public uint Types;
    public UblkBasicParameters Basic;
    public UblkDiscardParameters Discard;
}
