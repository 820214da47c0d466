using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Images.Tests;

/// <summary>Judges a layer stack by real tools: exported to a sparse raw disk, e2fsck -fn, then the kernel's mount.</summary>
public static class ExportedDisk
{
    /// <summary>Exports the stack to a raw disk at <paramref name="imagePath"/> (deleted afterwards); e2fsck must find nothing.</summary>
    /// <param name="whileMounted">Called with the mount point and its tree before it is unmounted, to read what the tree does not hold.</param>
    /// <returns>The tree the kernel mounts, lost+found left out.</returns>
    public static FileTree CheckAndRead(ImageConfig config, string imagePath, Action<string, FileTree>? whileMounted = null)
    {
        try
        {
            using (var stack = ImageStack.Open(config))
            using (var image = FileBlockSource.OpenReadWrite(imagePath, stack.Size))
            {
                BlockExtents.CopyData(stack, image);
                image.Flush();
            }

            var check = E2fsck.Check(imagePath);
            Assert.True(check.Clean, check.ToString());
            using var mount = Ext4Mount.Mount(imagePath);
            var tree = FileTree.FromDirectory(mount.MountPoint, "lost+found");
            whileMounted?.Invoke(mount.MountPoint, tree);
            return tree;
        }
        finally
        {
            File.Delete(imagePath);
        }
    }
}
