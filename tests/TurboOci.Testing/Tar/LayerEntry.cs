namespace TurboOci.Testing.Tar;

/// <summary>The kind of file a tar entry makes.</summary>
public enum TarEntryKind
{
    File,
    Directory,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// <summary>How an entry's name (and link target) is stored in the archive.</summary>
public enum TarNameEncoding
{
    /// <summary>In the ustar name/prefix fields when it fits and is ASCII, else a PAX <c>path</c> record (what Go and Docker write).</summary>
    Auto,

    /// <summary>Always in a PAX <c>path</c> (<c>linkpath</c>) record, the ustar field holding a truncated copy.</summary>
    Pax,

    /// <summary>GNU style: a <c>././@LongLink</c> entry (type L, or K for a link target) when longer than 100 bytes.</summary>
    GnuLongLink,

    /// <summary>Raw UTF-8 bytes in the ustar name/prefix fields (must fit); no PAX record even for non-ASCII names.</summary>
    RawUtf8,
}

/// <summary>
/// One entry of a generated tar layer. <see cref="Path"/> is relative, without a leading or trailing slash
/// (directories get their trailing slash when written).
/// </summary>
public sealed record LayerEntry
{
    public required string Path { get; init; }

    public required TarEntryKind Kind { get; init; }

    /// <summary>Permission bits, including setuid, setgid and sticky (07777).</summary>
    public uint Mode { get; init; }

    public long Uid { get; init; }

    public long Gid { get; init; }

    /// <summary>Modification time in seconds since the Unix epoch.</summary>
    public long Mtime { get; init; }

    /// <summary>The data of a regular file; null for every other kind.</summary>
    public TarContent? Content { get; init; }

    /// <summary>A symlink's target, or a hardlink's target path inside the layer.</summary>
    public string? LinkTarget { get; init; }

    public int DevMajor { get; init; }

    public int DevMinor { get; init; }

    /// <summary>Extended attributes, written as PAX <c>SCHILY.xattr.&lt;name&gt;</c> records.</summary>
    public IReadOnlyDictionary<string, byte[]> Xattrs { get; init; } = new Dictionary<string, byte[]>();

    public TarNameEncoding NameEncoding { get; init; } = TarNameEncoding.Auto;

    /// <summary>The stored size: the content length for regular files, 0 for everything else.</summary>
    public long Size => Content?.Length ?? 0;

    /// <summary>The file name: the last path component.</summary>
    public string Name => Path[(Path.LastIndexOf('/') + 1)..];

    /// <summary>The parent directory's path, "" for entries at the root.</summary>
    public string Parent => Path.LastIndexOf('/') is var cut and >= 0 ? Path[..cut] : "";

    /// <summary>An OCI whiteout: <c>.wh.&lt;name&gt;</c> deletes name from lower layers.</summary>
    public bool IsWhiteout => Name.StartsWith(OciWhiteout.Prefix, StringComparison.Ordinal) && !IsOpaqueMarker;

    /// <summary>An OCI opaque marker <c>.wh..wh..opq</c>: hides everything lower layers put in this directory.</summary>
    public bool IsOpaqueMarker => Name == OciWhiteout.OpaqueMarker;

    /// <summary>The path a whiteout deletes.</summary>
    public string WhiteoutTarget =>
        IsWhiteout ? OciWhiteout.Join(Parent, Name[OciWhiteout.Prefix.Length..]) : throw new InvalidOperationException($"{Path} is not a whiteout");
}

/// <summary>The OCI image spec's whiteout file names.</summary>
public static class OciWhiteout
{
    public const string Prefix = ".wh.";

    public const string OpaqueMarker = ".wh..wh..opq";

    internal static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "/" + name;
}
