namespace TurboOci.Testing.Tar;

/// <summary>
/// What a stack of layers must look like once applied, following the OCI image spec's rules (applied
/// here in the simplest possible way, to be the expectation other implementations are compared with):
/// a whiteout <c>.wh.x</c> deletes x and everything below it from lower layers; an opaque marker hides
/// everything lower layers put in its directory; whiteouts never touch entries of their own layer; a
/// non-directory replaces whatever was at its path (a directory with its whole subtree); a directory over
/// a directory only changes its metadata; a hardlink names the very file its target names at that point.
/// </summary>
public static class LayerModel
{
    /// <summary>The merged tree of <paramref name="layers"/>, bottom layer first.</summary>
    public static FileTree Merge(IEnumerable<TarLayerBuilder> layers)
    {
        var tree = new SortedDictionary<string, Node>(StringComparer.Ordinal);
        var nextInode = 1;
        foreach (var layer in layers)
        {
            // Whiteouts first: they apply to lower layers only, wherever they sit in this layer's stream.
            foreach (var entry in layer.Entries)
            {
                if (entry.IsOpaqueMarker)
                {
                    RemoveBelow(tree, entry.Parent);
                }
                else if (entry.IsWhiteout)
                {
                    tree.Remove(entry.WhiteoutTarget);
                    RemoveBelow(tree, entry.WhiteoutTarget);
                }
            }

            foreach (var entry in layer.Entries.Where(e => !e.IsWhiteout && !e.IsOpaqueMarker))
            {
                EnsureParentExists(tree, entry);
                if (tree.TryGetValue(entry.Path, out var existing)
                    && !(existing.Entry.Kind == TarEntryKind.Directory && entry.Kind == TarEntryKind.Directory))
                {
                    RemoveBelow(tree, entry.Path);
                }

                if (entry.Kind == TarEntryKind.Hardlink)
                {
                    if (!tree.TryGetValue(entry.LinkTarget!, out var target) || target.Entry.Kind == TarEntryKind.Directory)
                    {
                        throw new InvalidOperationException($"{layer.Name}: hardlink {entry.Path} to {entry.LinkTarget}, which is not a file at that point");
                    }

                    tree[entry.Path] = target;
                }
                else
                {
                    tree[entry.Path] = new Node(entry, nextInode++);
                }
            }
        }

        var groups = tree
            .Where(n => n.Value.Entry.Kind != TarEntryKind.Directory)
            .GroupBy(n => n.Value.Inode)
            .Where(g => g.Count() > 1)
            .SelectMany(g => g.Select(n => (n.Key, Group: g.Select(x => x.Key).Min(StringComparer.Ordinal)!)))
            .ToDictionary(x => x.Key, x => x.Group, StringComparer.Ordinal);

        return new FileTree(tree.ToDictionary(n => n.Key, n => ToTreeEntry(n.Value.Entry, groups.GetValueOrDefault(n.Key)), StringComparer.Ordinal));
    }

    private sealed record Node(LayerEntry Entry, int Inode);

    private static void RemoveBelow(SortedDictionary<string, Node> tree, string directory)
    {
        var prefix = directory.Length == 0 ? "" : directory + "/";
        foreach (var path in tree.Keys.Where(p => p.StartsWith(prefix, StringComparison.Ordinal) && p != directory).ToList())
        {
            tree.Remove(path);
        }
    }

    // Layers from real tools always carry their parent directories; the generated ones must too, or the
    // expectation would depend on how each extractor invents missing parents.
    private static void EnsureParentExists(SortedDictionary<string, Node> tree, LayerEntry entry)
    {
        if (entry.Parent.Length > 0 && (!tree.TryGetValue(entry.Parent, out var parent) || parent.Entry.Kind != TarEntryKind.Directory))
        {
            throw new InvalidOperationException($"{entry.Path}: its parent directory {entry.Parent} is not in this or a lower layer");
        }
    }

    private static FileTreeEntry ToTreeEntry(LayerEntry entry, string? hardlinkGroup)
    {
        var kind = entry.Kind switch
        {
            TarEntryKind.File => FileTreeKind.File,
            TarEntryKind.Directory => FileTreeKind.Directory,
            TarEntryKind.Symlink => FileTreeKind.Symlink,
            TarEntryKind.CharDevice => FileTreeKind.CharDevice,
            TarEntryKind.BlockDevice => FileTreeKind.BlockDevice,
            TarEntryKind.Fifo => FileTreeKind.Fifo,
            _ => throw new InvalidOperationException($"unexpected {entry.Kind}"),
        };
        var isDevice = kind is FileTreeKind.CharDevice or FileTreeKind.BlockDevice;
        return new FileTreeEntry(
            kind,
            kind == FileTreeKind.Symlink ? TarLayerBuilder.SymlinkMode : entry.Mode,
            entry.Uid,
            entry.Gid,
            entry.Size,
            entry.Content is null ? null : Convert.ToHexStringLower(entry.Content.Sha256()),
            kind == FileTreeKind.Symlink ? entry.LinkTarget : null,
            isDevice ? (uint)entry.DevMajor : 0,
            isDevice ? (uint)entry.DevMinor : 0,
            kind is FileTreeKind.Directory or FileTreeKind.Symlink ? null : entry.Mtime,
            hardlinkGroup,
            entry.Xattrs.ToDictionary(x => x.Key, x => Convert.ToHexStringLower(x.Value), StringComparer.Ordinal));
    }
}
