namespace TurboOci.Testing.Tar;

/// <summary>
/// Describes a tar layer entry by entry and writes it deterministically (fixed times and owners unless
/// given; entries in the order they were added). Paths are relative ("etc/passwd"); a leading "/" or "./"
/// is removed. See <see cref="TarStreamWriter"/> for the bytes.
/// </summary>
public sealed class TarLayerBuilder
{
    /// <summary>The modification time every entry gets unless told otherwise: 2023-11-14T22:13:20Z.</summary>
    public const long DefaultMtime = 1_700_000_000;

    private readonly List<LayerEntry> _entries = [];

    public TarLayerBuilder(string name = "layer")
    {
        Name = name;
    }

    /// <summary>A label for messages and file names.</summary>
    public string Name { get; }

    /// <summary>Written before every entry name, e.g. "./" as some tools write; "" (the OCI norm) by default.</summary>
    public string NamePrefix { get; init; } = "";

    public IReadOnlyList<LayerEntry> Entries => _entries;

    /// <summary>The permission bits every symlink has (0777).</summary>
    public const uint SymlinkMode = 0x1FF;

    /// <summary>
    /// Permission bits from octal text ("4755"): C# has no octal literals, and a decimal 0755 silently
    /// means something else, so the builder takes modes as the octal text everyone reads them as.
    /// </summary>
    public static uint ParseMode(string octal)
    {
        var mode = Convert.ToUInt32(octal, 8);
        return mode <= 0xFFF ? mode : throw new ArgumentOutOfRangeException(nameof(octal), octal, "a mode has at most 12 permission bits (07777)");
    }

    /// <summary>Adds a fully described entry.</summary>
    public TarLayerBuilder Add(LayerEntry entry)
    {
        var path = Normalize(entry.Path);
        if (entry.Kind == TarEntryKind.File && entry.Content is null)
        {
            throw new ArgumentException($"regular file {path} needs content", nameof(entry));
        }

        if (entry.Kind is TarEntryKind.Symlink or TarEntryKind.Hardlink && string.IsNullOrEmpty(entry.LinkTarget))
        {
            throw new ArgumentException($"link {path} needs a target", nameof(entry));
        }

        _entries.Add(entry with { Path = path });
        return this;
    }

    public TarLayerBuilder Directory(string path, string mode = "755", long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Directory, Mode = ParseMode(mode), Uid = uid, Gid = gid, Mtime = mtime,
            Xattrs = xattrs ?? Empty, NameEncoding = nameEncoding,
        });

    public TarLayerBuilder File(string path, TarContent content, string mode = "644", long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.File, Content = content, Mode = ParseMode(mode), Uid = uid, Gid = gid, Mtime = mtime,
            Xattrs = xattrs ?? Empty, NameEncoding = nameEncoding,
        });

    public TarLayerBuilder File(string path, byte[] bytes, string mode = "644", long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        File(path, TarContent.Bytes(bytes), mode, uid, gid, mtime, xattrs, nameEncoding);

    public TarLayerBuilder File(string path, string text, string mode = "644", long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        File(path, TarContent.Text(text), mode, uid, gid, mtime, xattrs, nameEncoding);

    public TarLayerBuilder EmptyFile(string path, string mode = "644", long uid = 0, long gid = 0, long mtime = DefaultMtime) =>
        File(path, TarContent.Bytes([]), mode, uid, gid, mtime);

    public TarLayerBuilder Symlink(string path, string target, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Symlink, LinkTarget = target, Mode = SymlinkMode, Uid = uid, Gid = gid, Mtime = mtime,
            NameEncoding = nameEncoding,
        });

    /// <summary>A hardlink to <paramref name="target"/>, a path written earlier in this layer or present in a lower one.</summary>
    public TarLayerBuilder Hardlink(string path, string target, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Hardlink, LinkTarget = Normalize(target), Mode = ParseMode("644"), Mtime = DefaultMtime,
            NameEncoding = nameEncoding,
        });

    public TarLayerBuilder CharDevice(string path, int major, int minor, string mode = "666", long uid = 0, long gid = 0) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.CharDevice, DevMajor = major, DevMinor = minor, Mode = ParseMode(mode), Uid = uid, Gid = gid,
            Mtime = DefaultMtime,
        });

    public TarLayerBuilder BlockDevice(string path, int major, int minor, string mode = "660", long uid = 0, long gid = 0) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.BlockDevice, DevMajor = major, DevMinor = minor, Mode = ParseMode(mode), Uid = uid, Gid = gid,
            Mtime = DefaultMtime,
        });

    public TarLayerBuilder Fifo(string path, string mode = "644", long uid = 0, long gid = 0) =>
        Add(new LayerEntry { Path = path, Kind = TarEntryKind.Fifo, Mode = ParseMode(mode), Uid = uid, Gid = gid, Mtime = DefaultMtime });

    /// <summary>An OCI whiteout deleting <paramref name="path"/> (and everything below it) from lower layers.</summary>
    public TarLayerBuilder Whiteout(string path)
    {
        var normalized = Normalize(path);
        var cut = normalized.LastIndexOf('/');
        var whiteout = cut < 0 ? OciWhiteout.Prefix + normalized : normalized[..(cut + 1)] + OciWhiteout.Prefix + normalized[(cut + 1)..];
        return EmptyFile(whiteout);
    }

    /// <summary>Marks <paramref name="directory"/> opaque: what lower layers put in it is hidden.</summary>
    public TarLayerBuilder Opaque(string directory) => EmptyFile(OciWhiteout.Join(Normalize(directory), OciWhiteout.OpaqueMarker));

    /// <summary>Writes the layer as an uncompressed tar stream.</summary>
    public void WriteTo(Stream output)
    {
        var writer = new TarStreamWriter(output, NamePrefix);
        foreach (var entry in _entries)
        {
            writer.Write(entry);
        }

        writer.Finish();
    }

    /// <summary>The uncompressed tar in memory; for small layers only.</summary>
    public byte[] ToArray()
    {
        using var buffer = new MemoryStream();
        WriteTo(buffer);
        return buffer.ToArray();
    }

    public override string ToString() => $"{Name} ({_entries.Count} entries)";

    private static readonly IReadOnlyDictionary<string, byte[]> Empty = new Dictionary<string, byte[]>();

    private static string Normalize(string path)
    {
        var trimmed = path;
        while (trimmed.StartsWith("./", StringComparison.Ordinal))
        {
            trimmed = trimmed[2..];
        }

        trimmed = trimmed.Trim('/');
        if (trimmed.Length == 0 || trimmed.Split('/').Any(part => part is "" or "." or ".."))
        {
            throw new ArgumentException($"not a usable entry path: \"{path}\"", nameof(path));
        }

        return trimmed;
    }
}
