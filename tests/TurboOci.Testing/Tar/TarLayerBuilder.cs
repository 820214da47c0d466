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

    public TarLayerBuilder Directory(string path, uint mode = 0755, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Directory, Mode = mode, Uid = uid, Gid = gid, Mtime = mtime,
            Xattrs = xattrs ?? Empty, NameEncoding = nameEncoding,
        });

    /// <summary>Adds every missing parent directory of <paramref name="path"/> and the path itself as directories (0755, root).</summary>
    public TarLayerBuilder Directories(string path)
    {
        var parts = Normalize(path).Split('/');
        for (var i = 1; i <= parts.Length; i++)
        {
            var prefix = string.Join('/', parts[..i]);
            if (!_entries.Any(e => e.Path == prefix && e.Kind == TarEntryKind.Directory))
            {
                Directory(prefix);
            }
        }

        return this;
    }

    public TarLayerBuilder File(string path, TarContent content, uint mode = 0644, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.File, Content = content, Mode = mode, Uid = uid, Gid = gid, Mtime = mtime,
            Xattrs = xattrs ?? Empty, NameEncoding = nameEncoding,
        });

    public TarLayerBuilder File(string path, byte[] bytes, uint mode = 0644, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        File(path, TarContent.Bytes(bytes), mode, uid, gid, mtime, xattrs, nameEncoding);

    public TarLayerBuilder File(string path, string text, uint mode = 0644, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        IReadOnlyDictionary<string, byte[]>? xattrs = null, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        File(path, TarContent.Text(text), mode, uid, gid, mtime, xattrs, nameEncoding);

    public TarLayerBuilder EmptyFile(string path, uint mode = 0644, long uid = 0, long gid = 0, long mtime = DefaultMtime) =>
        File(path, TarContent.Bytes([]), mode, uid, gid, mtime);

    public TarLayerBuilder Symlink(string path, string target, long uid = 0, long gid = 0, long mtime = DefaultMtime,
        TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Symlink, LinkTarget = target, Mode = 0777, Uid = uid, Gid = gid, Mtime = mtime,
            NameEncoding = nameEncoding,
        });

    /// <summary>A hardlink to <paramref name="target"/>, a path written earlier in this layer or present in a lower one.</summary>
    public TarLayerBuilder Hardlink(string path, string target, TarNameEncoding nameEncoding = TarNameEncoding.Auto) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.Hardlink, LinkTarget = Normalize(target), Mode = 0644, Mtime = DefaultMtime,
            NameEncoding = nameEncoding,
        });

    public TarLayerBuilder CharDevice(string path, int major, int minor, uint mode = 0666, long uid = 0, long gid = 0) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.CharDevice, DevMajor = major, DevMinor = minor, Mode = mode, Uid = uid, Gid = gid,
            Mtime = DefaultMtime,
        });

    public TarLayerBuilder BlockDevice(string path, int major, int minor, uint mode = 0660, long uid = 0, long gid = 0) =>
        Add(new LayerEntry
        {
            Path = path, Kind = TarEntryKind.BlockDevice, DevMajor = major, DevMinor = minor, Mode = mode, Uid = uid, Gid = gid,
            Mtime = DefaultMtime,
        });

    public TarLayerBuilder Fifo(string path, uint mode = 0644, long uid = 0, long gid = 0) =>
        Add(new LayerEntry { Path = path, Kind = TarEntryKind.Fifo, Mode = mode, Uid = uid, Gid = gid, Mtime = DefaultMtime });

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
