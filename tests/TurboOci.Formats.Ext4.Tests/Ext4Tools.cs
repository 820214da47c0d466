using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>A sparse scratch image in its own temp folder, deleted on dispose.</summary>
internal sealed class ScratchImage : IDisposable
{
    private readonly TempDir _dir = new("turbooci-ext4-");

    public ScratchImage(long size = 128L << 20)
    {
        Path = _dir.File("fs.img");
        using var f = File.Create(Path);
        f.SetLength(size);
    }

    public string Path { get; }

    public string Folder => _dir.Path;

    public FileBlockSource OpenWritable() => FileBlockSource.OpenReadWrite(Path);

    /// <summary>Formats with our own mkfs.</summary>
    public void Format(Ext4CreateOptions? options = null)
    {
        using var device = OpenWritable();
        using var fs = Ext4FileSystem.Create(device, options);
    }

    /// <summary>Formats with the real mke2fs.</summary>
    public void FormatWithMke2fs(string extraOptions) => Mkfs.Ext4(Path, new FileInfo(Path).Length, extraOptions);

    /// <summary>Opens the image writable, runs <paramref name="change"/>, flushes and closes it.</summary>
    public void Modify(Action<Ext4FileSystem> change)
    {
        using var device = OpenWritable();
        using var fs = Ext4FileSystem.Open(device, writable: true);
        change(fs);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The judge: e2fsprogs' own checker.</summary>
internal static class Ext4Tools
{
    /// <summary>Runs e2fsck -fn and fails the test with its full output unless it found nothing at all.</summary>
    public static void AssertClean(string image)
    {
        var result = E2fsck.Check(image);
        Assert.True(result.Clean, result.ToString());
    }
}
