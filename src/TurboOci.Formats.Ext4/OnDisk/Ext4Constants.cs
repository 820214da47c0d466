namespace TurboOci.Formats.Ext4.OnDisk;

/// <summary>Numbers fixed by the ext4 on-disk format (Linux fs/ext4/ext4.h, e2fsprogs lib/ext2fs/ext2_fs.h).</summary>
public static class Ext4Constants
{
    public const string FormatName = "ext4";
    public const ushort SuperblockMagic = 0xEF53;
    public const int SuperblockOffset = 1024;
    public const int SuperblockSize = 1024;
    public const uint RootInode = 2;
    public const uint ResizeInode = 7;
    public const uint JournalInode = 8;
    public const int GoodOldInodeSize = 128;
    public const int MinExtraInodeSize = 32;
    public const int MaxNameLength = 255;

    public const uint RevisionDynamic = 1;
    public const ushort StateClean = 1;
    public const ushort ErrorsContinue = 1;
    public const byte ChecksumTypeCrc32C = 1;

    // The extent tree: at most this many levels. The kernel refuses deeper trees (EXT4_MAX_EXTENT_DEPTH).
    public const int MaxExtentDepth = 5;
    public const int MaxInitializedExtentLength = 32768;
    public const int InodeBlockBytes = 60;
    public const int FastSymlinkMaxLength = InodeBlockBytes - 1;

    // Directory link counts: past this many, dir_nlink fixes the count at 1.
    public const int MaxLinkCount = 65000;
}

[Flags]
public enum CompatFeatures : uint
{
    DirPrealloc = 0x1,
    ImagicInodes = 0x2,
    HasJournal = 0x4,
    ExtAttr = 0x8,
    ResizeInode = 0x10,
    DirIndex = 0x20,
    LazyBg = 0x40,
    SparseSuper2 = 0x200,
    FastCommit = 0x400,
    StableInodes = 0x800,
    OrphanFile = 0x1000,
}

[Flags]
public enum IncompatFeatures : uint
{
    Compression = 0x1,
    FileType = 0x2,
    Recover = 0x4,
    JournalDev = 0x8,
    MetaBg = 0x10,
    Extents = 0x40,
    SixtyFourBit = 0x80,
    Mmp = 0x100,
    FlexBg = 0x200,
    EaInode = 0x400,
    DirData = 0x1000,
    CsumSeed = 0x2000,
    LargeDir = 0x4000,
    InlineData = 0x8000,
    Encrypt = 0x10000,
    Casefold = 0x20000,

    /// <summary>What this engine reads and writes; anything else makes it refuse the filesystem.</summary>
    Supported = FileType | Extents | SixtyFourBit | FlexBg | CsumSeed | LargeDir,
}

[Flags]
public enum RoCompatFeatures : uint
{
    SparseSuper = 0x1,
    LargeFile = 0x2,
    BtreeDir = 0x4,
    HugeFile = 0x8,
    GdtCsum = 0x10,
    DirNlink = 0x20,
    ExtraIsize = 0x40,
    HasSnapshot = 0x80,
    Quota = 0x100,
    Bigalloc = 0x200,
    MetadataCsum = 0x400,
    Replica = 0x800,
    ReadOnly = 0x1000,
    Project = 0x2000,
    Verity = 0x8000,
    OrphanPresent = 0x10000,

    /// <summary>What this engine keeps valid when it writes. Quota and project would need quota files updated.</summary>
    Supported = SparseSuper | LargeFile | BtreeDir | HugeFile | GdtCsum | DirNlink | ExtraIsize | MetadataCsum,
}

[Flags]
public enum GroupFlags : ushort
{
    InodeUninit = 0x1,
    BlockUninit = 0x2,
    InodeTableZeroed = 0x4,
}

[Flags]
public enum InodeFlags : uint
{
    Index = 0x1000,
    HugeFile = 0x40000,
    Extents = 0x80000,
    EaInode = 0x200000,
    InlineData = 0x10000000,
}

/// <summary>The file type in the upper bits of i_mode (the S_IFMT values).</summary>
public enum InodeType : ushort
{
    Fifo = 0x1000,
    CharDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}

/// <summary>The file type byte of a directory entry (filetype feature).</summary>
public enum DirEntryType : byte
{
    Unknown = 0,
    Regular = 1,
    Directory = 2,
    CharDevice = 3,
    BlockDevice = 4,
    Fifo = 5,
    Socket = 6,
    Symlink = 7,
}

public static class InodeTypes
{
    public const ushort TypeMask = 0xF000;
    public const ushort PermissionMask = 0x0FFF;

    public static InodeType FromMode(ushort mode) => (InodeType)(mode & TypeMask);

    public static DirEntryType ToDirEntryType(InodeType type) => type switch
    {
        InodeType.Regular => DirEntryType.Regular,
        InodeType.Directory => DirEntryType.Directory,
        InodeType.CharDevice => DirEntryType.CharDevice,
        InodeType.BlockDevice => DirEntryType.BlockDevice,
        InodeType.Fifo => DirEntryType.Fifo,
        InodeType.Socket => DirEntryType.Socket,
        InodeType.Symlink => DirEntryType.Symlink,
        _ => DirEntryType.Unknown,
    };
}
