namespace TurboOci.Frontends.Nbd;

// The NBD protocol, fixed newstyle negotiation, as in the protocol document of the NetworkBlockDevice
// project (doc/proto.md) and linux/nbd.h. Every integer on the wire is big-endian.

/// <summary>Magic numbers and sizes of the NBD wire format.</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC", the first 8 bytes the server sends.</summary>
    public const ulong Init = 0x4E42444D41474943;

    /// <summary>"IHAVEOPT": after the init magic, and before every option the client sends.</summary>
    public const ulong Option = 0x49484156454F5054;

    /// <summary>Before every option reply.</summary>
    public const ulong OptionReply = 0x0003E889045565A9;

    public const uint Request = 0x25609513;
    public const uint SimpleReply = 0x67446698;
    public const uint StructuredReply = 0x668E33EF;

    public const int OptionHeaderSize = 16;
    public const int OptionReplyHeaderSize = 20;
    public const int RequestSize = 28;
    public const int SimpleReplySize = 16;
    public const int StructuredReplyHeaderSize = 20;

    /// <summary>The one metadata context offered: which ranges hold data and which read as zeros.</summary>
    public const string BaseAllocation = "base:allocation";

    /// <summary>base:allocation status bits (NBD_STATE_HOLE, NBD_STATE_ZERO).</summary>
    public const uint StateHole = 1;
    public const uint StateZero = 2;

    // Offsets inside struct nbd_request and struct nbd_reply (linux/nbd.h, packed).
    public const int RequestMagicOffset = 0;
    public const int RequestFlagsOffset = 4;
    public const int RequestTypeOffset = 6;
    public const int RequestCookieOffset = 8;
    public const int RequestOffsetOffset = 16;
    public const int RequestLengthOffset = 24;
    public const int ReplyMagicOffset = 0;
    public const int ReplyErrorOffset = 4;
    public const int ReplyCookieOffset = 8;
}

/// <summary>Flags in the server's greeting.</summary>
[Flags]
public enum NbdHandshakeFlags : ushort
{
    None = 0,
    FixedNewstyle = 1,
    NoZeroes = 2,
}

/// <summary>Flags the client answers the greeting with.</summary>
[Flags]
public enum NbdClientFlags : uint
{
    None = 0,
    FixedNewstyle = 1,
    NoZeroes = 2,
}

/// <summary>Negotiation options (NBD_OPT_*).</summary>
public enum NbdOptionType : uint
{
    ExportName = 1,
    Abort = 2,
    List = 3,
    StartTls = 5,
    Info = 6,
    Go = 7,
    StructuredReply = 8,
    ListMetaContext = 9,
    SetMetaContext = 10,
    ExtendedHeaders = 11,
}

/// <summary>Option reply types (NBD_REP_*); errors have the top bit set.</summary>
public enum NbdOptionReplyType : uint
{
    Ack = 1,
    Server = 2,
    Info = 3,
    MetaContext = 4,
    ErrorUnsupported = 0x80000001,
    ErrorPolicy = 0x80000002,
    ErrorInvalid = 0x80000003,
    ErrorPlatform = 0x80000004,
    ErrorTlsRequired = 0x80000005,
    ErrorUnknown = 0x80000006,
    ErrorShutdown = 0x80000007,
    ErrorBlockSizeRequired = 0x80000008,
    ErrorTooBig = 0x80000009,
}

/// <summary>NBD_INFO_* items of NBD_OPT_INFO and NBD_OPT_GO.</summary>
public enum NbdInfoType : ushort
{
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
}

/// <summary>Transmission flags (NBD_FLAG_*), sent with the export's size.</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    None = 0,
    HasFlags = 1 << 0,
    ReadOnly = 1 << 1,
    SendFlush = 1 << 2,
    SendFua = 1 << 3,
    Rotational = 1 << 4,
    SendTrim = 1 << 5,
    SendWriteZeroes = 1 << 6,
    SendDf = 1 << 7,
    CanMultiConnection = 1 << 8,
    SendResize = 1 << 9,
    SendCache = 1 << 10,
    SendFastZero = 1 << 11,
}

/// <summary>Commands of the transmission phase (NBD_CMD_*).</summary>
public enum NbdCommand : ushort
{
    Read = 0,
    Write = 1,
    Disconnect = 2,
    Flush = 3,
    Trim = 4,
    Cache = 5,
    WriteZeroes = 6,
    BlockStatus = 7,
}

/// <summary>Command flags (NBD_CMD_FLAG_*).</summary>
[Flags]
public enum NbdCommandFlags : ushort
{
    None = 0,
    Fua = 1 << 0,
    NoHole = 1 << 1,
    DontFragment = 1 << 2,
    RequestOne = 1 << 3,
    FastZero = 1 << 4,
}

/// <summary>Structured reply chunk types (NBD_REPLY_TYPE_*).</summary>
public enum NbdReplyType : ushort
{
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    Error = 32769,
    ErrorOffset = 32770,
}

/// <summary>The errno values NBD puts on the wire (they are protocol constants, not the host's).</summary>
public enum NbdError : uint
{
    None = 0,
    Permission = 1,
    Io = 5,
    NoMemory = 12,
    Invalid = 22,
    NoSpace = 28,
    Overflow = 75,
    NotSupported = 95,
    Shutdown = 108,
}
