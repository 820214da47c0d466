using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Formats.Ext4.Tar;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.Oci;

/// <summary>Where regular-file data goes when a layer is applied.</summary>
public enum LayerDataMode
{
    /// <summary>File bytes are written into the filesystem's data blocks (native overlaybd layers).</summary>
    Copied,

    /// <summary>No file bytes are written; each file's blocks are reported to an <see cref="IFileDataMapper"/> (TurboOCI).</summary>
    Mapped,
}

/// <summary>Receives, in mapped mode, which device ranges hold which bytes of the uncompressed tar.</summary>
public interface IFileDataMapper
{
    /// <summary>Device bytes [<paramref name="deviceOffset"/>, +<paramref name="length"/>) are tar bytes from <paramref name="tarOffset"/>.</summary>
    void Map(long deviceOffset, long length, long tarOffset);
}

/// <summary>What applying one layer did.</summary>
public sealed record LayerApplyResult(int Entries, int Whiteouts, long FileBytes, long TarBytes);

/// <summary>
/// Applies an OCI layer (an uncompressed tar stream) to an ext4 filesystem with the image-spec changeset
/// rules: whiteouts and opaque directories remove lower content (never what this layer created), an entry
/// replaces an existing entry of another type, directories over directories keep their content, hard links
/// point at files already present, PAX/GNU names, SCHILY xattrs, numeric owners, devices and mtimes apply.
/// Paths are cleaned lexically and a non-directory (including a symlink) in a parent position is replaced
/// by a directory, so nothing is ever written through a symlink or outside the root.
/// </summary>
public sealed class OciLayerApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";
    private static readonly InodeAttributes s_implicitDirectory = new(0x1ED);

    private readonly Ext4FileSystem _fs;
    private readonly LayerDataMode _mode;
    private readonly IFileDataMapper? _mapper;
    private readonly HashSet<string> _created = new(StringComparer.Ordinal);

    public OciLayerApplier(Ext4FileSystem fs, LayerDataMode mode, IFileDataMapper? mapper = null)
    {
        if (mode == LayerDataMode.Mapped && mapper is null)
        {
            throw new ArgumentException("mapped mode needs a mapper", nameof(mapper));
        }

        _fs = fs;
        _mode = mode;
        _mapper = mapper;
    }

    /// <summary>Applies the whole tar stream; the caller flushes or disposes the filesystem afterwards.</summary>
    public LayerApplyResult Apply(Stream tar)
    {
        var reader = new TarEntryReader(tar);
        int entries = 0, whiteouts = 0;
        long fileBytes = 0;
        while (reader.Next() is { } entry)
        {
            entries++;
            try
            {
                if (ApplyEntry(entry, reader))
                {
                    whiteouts++;
                }
                else if (entry.Type == TarMemberType.Regular)
                {
                    fileBytes += entry.Size;
                }
            }
            catch (ArgumentException e)
            {
                throw new TurboOciFormatException(TarHeader.FormatName, $"entry '{entry.Path}'", entry.HeaderOffset, e.Message, e);
            }
        }

        return new LayerApplyResult(entries, whiteouts, fileBytes, reader.Position);
    }

    /// <summary>Applies one entry; true when it was a whiteout.</summary>
    private bool ApplyEntry(TarMember entry, TarEntryReader reader)
    {
        var components = LayerPath.Normalize(entry.Path);
        if (components.Length == 0)
        {
            return false; // the root itself: nothing to create
        }

        var name = components[^1];
        var parentComponents = components[..^1];
        var path = LayerPath.Join(components);
        if (name == OpaqueMarker)
        {
            var dir = EnsureDirectories(parentComponents);
            RemoveLowerContent(dir, LayerPath.Join(parentComponents));
            return true;
        }

        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            var hidden = name[WhiteoutPrefix.Length..];
            if (hidden.Length == 0 || hidden is "." or "..")
            {
                Fail(entry, $"whiteout names nothing ('{name}')");
            }

            if (LookupDirectory(parentComponents) is { } parentDir)
            {
                RemoveUnlessCreated(parentDir, hidden, LayerPath.Join([.. parentComponents, hidden]));
            }

            return true;
        }

        var parent = EnsureDirectories(parentComponents);
        if (entry.Type == TarMemberType.HardLink)
        {
            ApplyHardLink(entry, parent, name, path);
            return false;
        }

        var attributes = new InodeAttributes((ushort)(entry.Mode & 0xFFF), (uint)entry.Uid, (uint)entry.Gid, entry.Mtime, entry.Mtime);
        if (_fs.TryLookup(parent, name) is { } existing)
        {
            if (entry.Type == TarMemberType.Directory && _fs.ReadInode(existing).Type == InodeType.Directory)
            {
                _fs.SetAttributes(existing, attributes);
                SetXattrs(existing, entry);
                _created.Add(path);
                return false;
            }

            _fs.Remove(parent, name);
        }

        var ino = entry.Type switch
        {
            TarMemberType.Regular => CreateRegular(entry, reader, parent, name, attributes),
            TarMemberType.Directory => _fs.CreateDirectory(parent, name, attributes),
            TarMemberType.Symlink => entry.LinkTarget.Length == 0
                ? Fail<uint>(entry, "symlink with an empty target")
                : _fs.CreateSymlink(parent, name, entry.LinkTarget, attributes),
            TarMemberType.CharDevice => _fs.CreateSpecial(parent, name, InodeType.CharDevice, entry.DevMajor, entry.DevMinor, attributes),
            TarMemberType.BlockDevice => _fs.CreateSpecial(parent, name, InodeType.BlockDevice, entry.DevMajor, entry.DevMinor, attributes),
            TarMemberType.Fifo => _fs.CreateSpecial(parent, name, InodeType.Fifo, 0, 0, attributes),
            _ => Fail<uint>(entry, $"unexpected entry type {entry.Type}"),
        };
        SetXattrs(ino, entry);
        _created.Add(path);
        return false;
    }

    private uint CreateRegular(TarMember entry, TarEntryReader reader, uint parent, string name, InodeAttributes attributes)
    {
        if (_mode == LayerDataMode.Copied)
        {
            return _fs.CreateFile(parent, name, attributes, new EntryDataStream(reader), entry.Size);
        }

        // Skip the data first: a tar that ends early is refused before any mapping points past its end.
        reader.SkipPending();
        var (ino, placements) = _fs.CreateFileAllocated(parent, name, attributes, entry.Size);

        // Map the file rounded up to 512 bytes (the tar's own padding comes along), as overlaybd does.
        var remaining = (entry.Size + 511) / 512 * 512;
        foreach (var p in placements)
        {
            var count = Math.Min(p.Length, remaining);
            if (count <= 0)
            {
                break;
            }

            _mapper!.Map(p.DeviceOffset, count, entry.DataOffset + p.FileOffset);
            remaining -= count;
        }

        return ino;
    }

    private void ApplyHardLink(TarMember entry, uint parent, string name, string path)
    {
        var targetComponents = LayerPath.Normalize(entry.LinkTarget);
        if (targetComponents.Length == 0)
        {
            Fail(entry, "hard link to the root directory");
        }

        if (LayerPath.Join(targetComponents) == path)
        {
            Fail(entry, "hard link to itself");
        }

        var target = LookupNoFollow(targetComponents)
            ?? Fail<uint>(entry, $"hard link target '{entry.LinkTarget}' does not exist (links must point at earlier entries)");
        if (_fs.ReadInode(target).Type == InodeType.Directory)
        {
            Fail(entry, $"hard link target '{entry.LinkTarget}' is a directory");
        }

        if (_fs.TryLookup(parent, name) is not null)
        {
            _fs.Remove(parent, name);
        }

        _fs.CreateHardLink(parent, name, target);
        _created.Add(path);
    }

    private void SetXattrs(uint ino, TarMember entry)
    {
        var storable = entry.Xattrs.Where(x => Ext4FileSystem.CanStoreXattr(x.Key)).ToDictionary(x => x.Key, x => x.Value, StringComparer.Ordinal);
        if (storable.Count > 0)
        {
            _fs.SetXattrs(ino, storable);
        }
    }

    /// <summary>Walks (and creates, mode 0755) the directories of a path; a non-directory in the way is replaced.</summary>
    private uint EnsureDirectories(IReadOnlyList<string> components)
    {
        var ino = Ext4Constants.RootInode;
        for (var i = 0; i < components.Count; i++)
        {
            var child = _fs.TryLookup(ino, components[i]);
            if (child is { } existing && _fs.ReadInode(existing).Type == InodeType.Directory)
            {
                ino = existing;
                continue;
            }

            if (child is not null)
            {
                _fs.Remove(ino, components[i]);
            }

            ino = _fs.CreateDirectory(ino, components[i], s_implicitDirectory);
            _created.Add(LayerPath.Join(components.Take(i + 1)));
        }

        return ino;
    }

    private uint? LookupDirectory(IReadOnlyList<string> components)
    {
        var ino = LookupNoFollow(components);
        return ino is { } found && _fs.ReadInode(found).Type == InodeType.Directory ? found : null;
    }

    /// <summary>Resolves a path component by component; a symlink or file in a parent position means "not found".</summary>
    private uint? LookupNoFollow(IReadOnlyList<string> components)
    {
        uint ino = Ext4Constants.RootInode;
        foreach (var part in components)
        {
            if (_fs.ReadInode(ino).Type != InodeType.Directory || _fs.TryLookup(ino, part) is not { } next)
            {
                return null;
            }

            ino = next;
        }

        return ino;
    }

    /// <summary>Opaque directory: removes every child that this layer did not create, recursing into kept directories.</summary>
    private void RemoveLowerContent(uint dir, string dirPath)
    {
        foreach (var child in _fs.ListDirectory(dir))
        {
            var childPath = dirPath.Length == 0 ? child.Name : dirPath + "/" + child.Name;
            if (!_created.Contains(childPath))
            {
                _fs.Remove(dir, child);
            }
            else if (child.Type == DirEntryType.Directory)
            {
                RemoveLowerContent(child.Inode, childPath);
            }
        }
    }

    private void RemoveUnlessCreated(uint parent, string name, string path)
    {
        if (_fs.TryLookup(parent, name) is not { } ino)
        {
            return;
        }

        if (!_created.Contains(path))
        {
            _fs.Remove(parent, name);
        }
        else if (_fs.ReadInode(ino).Type == InodeType.Directory)
        {
            RemoveLowerContent(ino, path);
        }
    }

    private static void Fail(TarMember entry, string problem) => Fail<int>(entry, problem);

    private static T Fail<T>(TarMember entry, string problem) =>
        throw new TurboOciFormatException(TarHeader.FormatName, $"entry '{entry.Path}'", entry.HeaderOffset, problem);

    /// <summary>The current entry's data as a read-only stream, for copied mode.</summary>
    private sealed class EntryDataStream(TarEntryReader reader) : ReadOnlyForwardStream
    {
        public override int Read(Span<byte> buffer) => reader.ReadData(buffer);
    }
}
