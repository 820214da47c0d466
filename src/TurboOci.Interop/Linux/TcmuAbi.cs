using System.Runtime.InteropServices;

namespace TurboOci.Interop.Linux;

// The TCMU (target_core_user) ring shared with the kernel through uio: a mailbox at the start of
// the mapping, a command ring at mailbox.cmdr_off, and a data area after it (linux/target_core_user.h).
// KernelAbiTests compiles the kernel header and checks every size and offset here.

/// <summary>Constants of the TCMU ring.</summary>
public static class TcmuConstants
{
    public const ushort MailboxVersion = 2;

    /// <summary>The mailbox's cmd_tail sits on its own cache line (ALIGN_SIZE).</summary>
    public const int AlignSize = 64;

    public const ushort MailboxFlagOutOfOrderCompletion = 1 << 0;
    public const ushort MailboxFlagReadLength = 1 << 1;
    public const ushort MailboxFlagTaskManagement = 1 << 2;
    public const ushort MailboxFlagKeepBuffer = 1 << 3;

    /// <summary>The low bits of len_op hold the opcode; entries are 8-byte aligned, so the length keeps the rest.</summary>
    public const uint OpMask = 0x7;

    public const uint OpPad = 0;
    public const uint OpCommand = 1;
    public const uint OpTaskManagement = 2;

    public const byte UserFlagUnknownOp = 0x1;
    public const byte UserFlagReadLength = 0x2;
    public const byte UserFlagKeepBuffer = 0x4;

    public const int SenseBufferSize = 96;
}

/// <summary>struct tcmu_mailbox: written by the kernel except cmd_tail, which the handler advances.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
public struct TcmuMailbox
{
    [FieldOffset(0)] public ushort Version;
    [FieldOffset(2)] public ushort Flags;
    [FieldOffset(4)] public uint CommandRingOffset;
    [FieldOffset(8)] public uint CommandRingSize;
    [FieldOffset(12)] public uint CommandHead;
    [FieldOffset(TcmuConstants.AlignSize)] public uint CommandTail;
}

/// <summary>struct tcmu_cmd_entry_hdr (packed).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct TcmuCommandEntryHeader
{
    public uint LengthAndOp;
    public ushort CommandId;
    public byte KernelFlags;
    public byte UserFlags;

    public readonly uint Op => LengthAndOp & TcmuConstants.OpMask;

    public readonly uint Length => LengthAndOp & ~TcmuConstants.OpMask;
}

/// <summary>
/// struct tcmu_cmd_entry: the header, then either the request the kernel wrote (iovec counts, the
/// CDB's offset; the iovecs follow at byte 48) or the response the handler writes back over it
/// (SCSI status, read length, sense). The outer struct is packed but its anonymous request struct
/// is not, so cdb_off is 8-aligned at byte 24 (the ABI test caught exactly this).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
public unsafe struct TcmuCommandEntry
{
    /// <summary>Where struct iovec iov[] of the request begins.</summary>
    public const int RequestIovecOffset = 48;

    [FieldOffset(0)] public TcmuCommandEntryHeader Header;
    [FieldOffset(8)] public uint RequestIovCount;
    [FieldOffset(12)] public uint RequestIovBidiCount;
    [FieldOffset(16)] public uint RequestIovDifCount;
    [FieldOffset(24)] public ulong RequestCdbOffset;
    [FieldOffset(32)] public ulong RequestPad1;
    [FieldOffset(40)] public ulong RequestPad2;
    [FieldOffset(8)] public byte ResponseScsiStatus;
    [FieldOffset(9)] public byte ResponsePad1;
    [FieldOffset(10)] public ushort ResponsePad2;
    [FieldOffset(12)] public uint ResponseReadLength;
    [FieldOffset(16)] public fixed byte ResponseSenseBuffer[TcmuConstants.SenseBufferSize];
}
