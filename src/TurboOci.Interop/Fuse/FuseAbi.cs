using System.Runtime.InteropServices;

namespace TurboOci.Interop.Fuse;

// The FUSE kernel protocol (linux/fuse.h, protocol 7.38 as shipped by linux-libc-dev in Debian 12).
// Every struct here is blittable and laid out exactly as the C struct; FuseAbiTests compiles the
// kernel header with gcc and compares size and every field offset.

/// <summary>FUSE request opcodes (enum fuse_opcode).</summary>
public enum FuseOpcode : uint
{
    Lookup = 1,
    Forget = 2,
    GetAttr = 3,
    SetAttr = 4,
    ReadLink = 5,
    SymLink = 6,
    MkNod = 8,
    MkDir = 9,
    Unlink = 10,
    RmDir = 11,
    Rename = 12,
    Link = 13,
    Open = 14,
    Read = 15,
    Write = 16,
    StatFs = 17,
    Release = 18,
    Fsync = 20,
    SetXAttr = 21,
    GetXAttr = 22,
    ListXAttr = 23,
    RemoveXAttr = 24,
    Flush = 25,
    Init = 26,
    OpenDir = 27,
    ReadDir = 28,
    ReleaseDir = 29,
    FsyncDir = 30,
    GetLk = 31,
    SetLk = 32,
    SetLkW = 33,
    Access = 34,
    Create = 35,
    Interrupt = 36,
    BMap = 37,
    Destroy = 38,
    IoCtl = 39,
    Poll = 40,
    NotifyReply = 41,
    BatchForget = 42,
    Fallocate = 43,
    ReadDirPlus = 44,
    Rename2 = 45,
    LSeek = 46,
    CopyFileRange = 47,
    SetupMapping = 48,
    RemoveMapping = 49,
    SyncFs = 50,
    TmpFile = 51,
    Statx = 52,
}

/// <summary>Constants of the FUSE protocol.</summary>
public static class FuseConstants
{
    public const uint KernelVersion = 7;

    /// <summary>The minor version whose structures this code speaks (the Debian 12 header's).</summary>
    public const uint KernelMinorVersion = 38;

    /// <summary>The oldest minor we accept: 7.28 brought max_pages (Linux 4.20).</summary>
    public const uint MinimumMinorVersion = 28;

    public const ulong RootId = 1;

    /// <summary>The kernel refuses a /dev/fuse read buffer smaller than this (FUSE_MIN_READ_BUFFER).</summary>
    public const int MinimumReadBuffer = 8192;

    // fuse_init_out.flags
    public const uint InitAsyncRead = 1 << 0;
    public const uint InitBigWrites = 1 << 5;
    public const uint InitDoReadDirPlus = 1 << 13;
    public const uint InitAsyncDio = 1 << 15;
    public const uint InitParallelDirOps = 1 << 18;
    public const uint InitMaxPages = 1 << 22;
    public const uint InitExtended = 1 << 30;

    // fuse_open_out.open_flags
    public const uint OpenDirectIo = 1 << 0;
    public const uint OpenKeepCache = 1 << 1;
    public const uint OpenParallelDirectWrites = 1 << 6;

    // fuse_setattr_in.valid
    public const uint SetAttrMode = 1 << 0;
    public const uint SetAttrUid = 1 << 1;
    public const uint SetAttrGid = 1 << 2;
    public const uint SetAttrSize = 1 << 3;
    public const uint SetAttrAtime = 1 << 4;
    public const uint SetAttrMtime = 1 << 5;
    public const uint SetAttrFh = 1 << 6;
    public const uint SetAttrAtimeNow = 1 << 7;
    public const uint SetAttrMtimeNow = 1 << 8;
    public const uint SetAttrLockOwner = 1 << 9;
    public const uint SetAttrCtime = 1 << 10;
    public const uint SetAttrKillSuidGid = 1 << 11;

    // fallocate(2) modes (linux/falloc.h)
    public const uint FallocKeepSize = 0x01;
    public const uint FallocPunchHole = 0x02;
    public const uint FallocZeroRange = 0x10;

    /// <summary>Directory entries are padded to 8 bytes (FUSE_DIRENT_ALIGN).</summary>
    public static int DirentSize(int nameLength) => (Marshal.SizeOf<FuseDirent>() + nameLength + 7) & ~7;

    /// <summary>FUSE_DIRENTPLUS_SIZE.</summary>
    public static int DirentPlusSize(int nameLength) => (Marshal.SizeOf<FuseEntryOut>() + Marshal.SizeOf<FuseDirent>() + nameLength + 7) & ~7;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseInHeader
{
    public uint Length;
    public FuseOpcode Opcode;
    public ulong Unique;
    public ulong NodeId;
    public uint Uid;
    public uint Gid;
    public uint Pid;
    public ushort TotalExtensionLength;
    public ushort Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseOutHeader
{
    public uint Length;
    public int Error;
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseInitIn
{
    /// <summary>Kernels before 7.36 send only major, minor, max_readahead and flags.</summary>
    public const int CompatSize = 16;

    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
    public uint Flags2;
    public fixed uint Unused[11];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseInitOut
{
    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
    public ushort MaxBackground;
    public ushort CongestionThreshold;
    public uint MaxWrite;
    public uint TimeGranularity;
    public ushort MaxPages;
    public ushort MapAlignment;
    public uint Flags2;
    public fixed uint Unused[7];
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseAttr
{
    public ulong Ino;
    public ulong Size;
    public ulong Blocks;
    public ulong Atime;
    public ulong Mtime;
    public ulong Ctime;
    public uint AtimeNsec;
    public uint MtimeNsec;
    public uint CtimeNsec;
    public uint Mode;
    public uint NLink;
    public uint Uid;
    public uint Gid;
    public uint RDev;
    public uint BlockSize;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseEntryOut
{
    public ulong NodeId;
    public ulong Generation;
    public ulong EntryValid;
    public ulong AttrValid;
    public uint EntryValidNsec;
    public uint AttrValidNsec;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseAttrOut
{
    public ulong AttrValid;
    public uint AttrValidNsec;
    public uint Dummy;
    public FuseAttr Attr;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseGetAttrIn
{
    public uint GetAttrFlags;
    public uint Dummy;
    public ulong Fh;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseSetAttrIn
{
    public uint Valid;
    public uint Padding;
    public ulong Fh;
    public ulong Size;
    public ulong LockOwner;
    public ulong Atime;
    public ulong Mtime;
    public ulong Ctime;
    public uint AtimeNsec;
    public uint MtimeNsec;
    public uint CtimeNsec;
    public uint Mode;
    public uint Unused4;
    public uint Uid;
    public uint Gid;
    public uint Unused5;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseOpenIn
{
    public uint Flags;
    public uint OpenFlags;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseOpenOut
{
    public ulong Fh;
    public uint OpenFlags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseReadIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint ReadFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseWriteIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint WriteFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseWriteOut
{
    public uint Size;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseReleaseIn
{
    public ulong Fh;
    public uint Flags;
    public uint ReleaseFlags;
    public ulong LockOwner;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseFlushIn
{
    public ulong Fh;
    public uint Unused;
    public uint Padding;
    public ulong LockOwner;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseFsyncIn
{
    public ulong Fh;
    public uint FsyncFlags;
    public uint Padding;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseKStatFs
{
    public ulong Blocks;
    public ulong BlocksFree;
    public ulong BlocksAvailable;
    public ulong Files;
    public ulong FilesFree;
    public uint BlockSize;
    public uint NameLength;
    public uint FragmentSize;
    public uint Padding;
    public fixed uint Spare[6];
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseStatFsOut
{
    public FuseKStatFs St;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseForgetIn
{
    public ulong NLookup;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseBatchForgetIn
{
    public uint Count;
    public uint Dummy;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseForgetOne
{
    public ulong NodeId;
    public ulong NLookup;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseInterruptIn
{
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseFallocateIn
{
    public ulong Fh;
    public ulong Offset;
    public ulong Length;
    public uint Mode;
    public uint Padding;
}

/// <summary>struct fuse_dirent without its trailing name.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseDirent
{
    public ulong Ino;
    public ulong Offset;
    public uint NameLength;
    public uint Type;
}

/// <summary>struct fuse_direntplus without the trailing name of its dirent.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseDirentPlus
{
    public FuseEntryOut EntryOut;
    public FuseDirent Dirent;
}
