using System.Security.Cryptography;
using TurboOci.Formats.Ext4;
using TurboOci.Formats.Lsmt;
using TurboOci.Images;
using TurboOci.Images.Indexing;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Tar;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// A small TurboOCI stack for tests that serve it to the kernel test VM through a frontend (TCMU, NBD, ublk):
/// the synthetic layers written as .tar.gz blobs and indexed (<see cref="StackIndexer"/>) onto a small ext4
/// base layer of our own (overlaybd's stock base is a 64 GiB disk, far too big to hash in the guest), all in
/// a host temp folder that the guest sees at the same path through the read-only host-root share.
/// What the guest must find is recorded here, computed on the host independently of any frontend: the sha256
/// of the whole exported raw disk, and the file tree the host kernel mounts from that raw disk (checked first
/// against the OCI changeset model of the layers), saved as JSON for the guest agent
/// (<see cref="FileTreeJson.Load"/>, compared with <see cref="FileTree.Compare"/>).
/// </summary>
public sealed class GuestStack : IDisposable
{
    /// <summary>The virtual disk's size: 2 block groups, big enough for the synthetic image, small enough to hash quickly under TCG.</summary>
    public const long DefaultDiskSize = 160L << 20;

    private readonly TempDir _temp;

    private GuestStack(TempDir temp, string configPath, long size, string rawSha256, string expectedTreePath, FileTree expectedTree, string largestFile)
    {
        _temp = temp;
        ConfigPath = configPath;
        Size = size;
        RawSha256 = rawSha256;
        ExpectedTreePath = expectedTreePath;
        ExpectedTree = expectedTree;
        LargestFile = largestFile;
    }

    /// <summary>The folder holding everything (blobs, the indexed stack, the expected tree); deleted on Dispose.</summary>
    public string Folder => _temp.Path;

    /// <summary>The stack's <c>config.v1.json</c> (lowers only; paths relative to its folder).</summary>
    public string ConfigPath { get; }

    /// <summary>The virtual disk's size in bytes.</summary>
    public long Size { get; }

    /// <summary>Lower-case hex sha256 of the whole virtual disk, as exported to a raw file on the host.</summary>
    public string RawSha256 { get; }

    /// <summary>The JSON file (<see cref="FileTreeJson"/>) of the tree a read-only mount must show, lost+found left out.</summary>
    public string ExpectedTreePath { get; }

    /// <summary>The same tree as <see cref="ExpectedTreePath"/>.</summary>
    public FileTree ExpectedTree { get; }

    /// <summary>The relative path of the biggest regular file in the tree that is not all zeros (for read loops).</summary>
    public string LargestFile { get; }

    /// <summary>
    /// Builds the stack from <see cref="SyntheticLayers.Image"/> (without the 20,000-entry directory). Takes a
    /// few seconds: it indexes three layers, exports the disk and loop-mounts it read-only once.
    /// </summary>
    public static GuestStack Create(long diskSize = DefaultDiskSize)
    {
        var temp = new TempDir("turbooci-guest-stack-");
        try
        {
            var layers = SyntheticLayers.Image(includeWideDirectory: false);
            var blobs = new List<string>();
            for (var i = 0; i < layers.Count; i++)
            {
                var blob = temp.File($"layer{i}.tar.gz");
                using (var file = File.Create(blob))
                {
                    LayerCompressor.Compress(layers[i].WriteTo, file, LayerCompression.Gzip);
                }

                blobs.Add(blob);
            }

            var stackFolder = temp.File("stack");
            var baseLayer = WriteBaseLayer(Path.Combine(stackFolder, StackIndexer.BaseFolder), diskSize);
            StackIndexer.Index(blobs, stackFolder, baseLayer);
            var configPath = Path.Combine(stackFolder, StackIndexer.ConfigName);

            var raw = temp.File("disk.raw");
            using (var stack = ImageStack.Open(ImageConfig.Load(configPath)))
            using (var image = FileBlockSource.OpenReadWrite(raw, stack.Size))
            {
                BlockExtents.CopyData(stack, image);
                image.Flush();
            }

            string rawSha256;
            using (var stream = File.OpenRead(raw))
            {
                rawSha256 = Convert.ToHexStringLower(SHA256.HashData(stream));
            }

            FileTree tree;
            using (var mount = Ext4Mount.Mount(raw))
            {
                tree = FileTree.FromDirectory(mount.MountPoint, "lost+found");
            }

            // The host kernel's view of our disk must be the layers' changeset model before it can judge a frontend.
            FileTree.AssertSame(LayerModel.Merge(layers), tree);
            File.Delete(raw);
            var treePath = temp.File("expected-tree.json");
            FileTreeJson.Save(tree, treePath);
            // Not a file of zeros: ext4 may keep that as unwritten extents, and reading it would not reach the device.
            var largest = tree.Entries
                .Where(e => e.Value.Kind == FileTreeKind.File && e.Value.Sha256 != Convert.ToHexStringLower(SHA256.HashData(new byte[e.Value.Size])))
                .MaxBy(e => e.Value.Size).Key;
            return new GuestStack(temp, configPath, diskSize, rawSha256, treePath, tree, largest);
        }
        catch
        {
            temp.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A committed LSMT layer holding an empty ext4 of <paramref name="diskSize"/> bytes made by our own mkfs with
    /// the group-descriptor checksums overlaybd's base layer uses; returns its path.
    /// </summary>
    private static string WriteBaseLayer(string folder, long diskSize)
    {
        Directory.CreateDirectory(folder);
        var data = Path.Combine(folder, "mkfs.data");
        var index = Path.Combine(folder, "mkfs.index");
        var committed = Path.Combine(folder, "base.lsmt");
        using (var layer = WritableLayer.Create(data, index, diskSize))
        {
            using (var fs = Ext4FileSystem.Create(layer, new Ext4CreateOptions { Checksums = Ext4ChecksumMode.UninitBg }))
            {
                fs.Flush();
            }

            using var output = File.Create(committed);
            layer.Commit(output);
        }

        File.Delete(data);
        File.Delete(index);
        return committed;
    }

    public void Dispose() => _temp.Dispose();
}
