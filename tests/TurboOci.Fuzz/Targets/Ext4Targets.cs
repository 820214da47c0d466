using TurboOci.Formats.Ext4;
using TurboOci.Formats.Ext4.Oci;
using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>An ext4 image from bytes: open it and walk the whole tree, reading every file, link and xattr (bounded).</summary>
public sealed class Ext4ImageTarget : IFuzzTarget
{
    private const int MaxInodesVisited = 4096;

    public string Name => "ext4-image";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var fs = Ext4FileSystem.Open(new MemoryBlockSource(input.ToArray()));
        var visited = new HashSet<uint>();
        var pending = new Stack<uint>([Ext4Constants.RootInode]);
        while (pending.Count > 0 && visited.Count < MaxInodesVisited)
        {
            var ino = pending.Pop();
            if (!visited.Add(ino))
            {
                continue; // hard links, and directory loops in a damaged image
            }

            var inode = fs.ReadInode(ino);
            fs.ReadXattrs(ino, inode);
            switch (inode.Type)
            {
                case InodeType.Directory:
                    foreach (var entry in fs.ListDirectory(ino))
                    {
                        pending.Push(entry.Inode);
                    }

                    break;
                case InodeType.Regular when inode.Size <= 1 << 20:
                    fs.ReadFile(ino);
                    break;
                case InodeType.Symlink:
                    fs.ReadSymlink(ino);
                    break;
            }
        }
    }

    /// <summary>Damaged images are refused as format errors; a damaged tree can also name a non-directory as one.</summary>
    public bool IsExpected(Exception exception) =>
        exception is TurboOciFormatException || (exception is IOException io && io.Message.StartsWith("ext4:", StringComparison.Ordinal));
}

/// <summary>A tar layer applied (both data modes) to a small fresh filesystem made by our own mkfs.</summary>
public sealed class Ext4LayerTarget : IFuzzTarget
{
    public string Name => "ext4-layer";

    public void Run(ReadOnlySpan<byte> input)
    {
        foreach (var mode in new[] { LayerDataMode.Mapped, LayerDataMode.Copied })
        {
            using var fs = Ext4FileSystem.Create(
                new MemoryBlockSource(new byte[8 << 20], writable: true),
                new Ext4CreateOptions { BlockSize = 1024, Timestamp = new Ext4Time(0, 0), Uuid = Guid.Empty });
            new OciLayerApplier(fs, mode, new DiscardingMapper()).Apply(new MemoryStream(input.ToArray()));
        }
    }

    /// <summary>Bad tars are format errors; a tar that is valid but larger than the 8 MiB filesystem runs out of space.</summary>
    public bool IsExpected(Exception exception) =>
        exception is TurboOciFormatException || (exception is IOException io && io.Message.Contains("ENOSPC", StringComparison.Ordinal));

    private sealed class DiscardingMapper : IFileDataMapper
    {
        public void Map(long deviceOffset, long length, long tarOffset)
        {
        }
    }
}
