using TurboOci.Images;
using TurboOci.Testing;

namespace TurboOci.Cli.Tests;

/// <summary><c>turbooci index</c> as a separate process: the folder layout, the config, errors.</summary>
public sealed class IndexCommandTests
{
    private static string ReferenceLayer => RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz");

    [Fact]
    public void IndexWritesOneFolderPerLayerAndAConfigOnTheBuiltInBaseLayer()
    {
        using var temp = new TempDir();
        var dir = temp.File("out");
        var (code, _, stderr) = CliRunner.Run("index", ReferenceLayer, "--output", dir, "--exact-gzip-index");
        Assert.True(code == 0, stderr);
        Assert.Contains("[1/1]", stderr, StringComparison.Ordinal);

        // The built-in base is overlaybd's ext4_64 exactly (sha256 from the fixtures README, Appendix A).
        Assert.Equal("c3a417552a6cf9ffa959b541850bab7d7f08f4255425bf8b48c85f7b36b378d9", Sha256Hex(Path.Combine(dir, "base", "ext4_64")));
        var config = ImageConfig.Load(Path.Combine(dir, "config.v1.json"));
        Assert.Equal(Path.Combine(dir, "base", "ext4_64"), config.Lowers[0].File);
        Assert.Equal(Path.Combine(dir, "0-ea6f060cc7e8", "ext4.fs.meta"), config.Lowers[1].File);
        Assert.Equal(ReferenceLayer, config.Lowers[1].TargetFile);
        Assert.Equal(File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta")), File.ReadAllBytes(config.Lowers[1].GzipIndex));
        Assert.True(File.Exists(config.Lowers[1].SpanDigests));

        // By default the windows are sparse: the same access points in a smaller file.
        var sparse = temp.File("sparse");
        (code, _, stderr) = CliRunner.Run("index", ReferenceLayer, "--output", sparse);
        Assert.True(code == 0, stderr);
        var sparseIndex = new FileInfo(Path.Combine(sparse, "0-ea6f060cc7e8", "gzip.meta")).Length;
        Assert.True(sparseIndex < new FileInfo(config.Lowers[1].GzipIndex).Length, $"sparse gzip.meta is {sparseIndex} bytes");
    }

    [Fact]
    public void IndexRefusesAMissingLayerAndABadModeWithoutWritingAnything()
    {
        using var temp = new TempDir();
        var dir = temp.File("out");
        var (code, _, stderr) = CliRunner.Run("index", temp.File("missing.tar.gz"), "--output", dir);
        Assert.NotEqual(0, code);
        Assert.Contains("missing.tar.gz", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir));

        (code, _, stderr) = CliRunner.Run("index", ReferenceLayer, "--output", dir, "--mode", "sideways");
        Assert.NotEqual(0, code);
        Assert.Contains("--mode", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void ExportWithTheIndexConfigWritesADiskThatMountsAsGnuTarExtractsTheLayer()
    {
        using var temp = new TempDir();
        var dir = temp.File("out");
        var (code, _, stderr) = CliRunner.Run("index", ReferenceLayer, "--output", dir);
        Assert.True(code == 0, stderr);
        var image = temp.File("disk.img");
        (code, _, stderr) = CliRunner.Run("export", image, "--config", Path.Combine(dir, "config.v1.json"));
        Assert.True(code == 0, stderr);

        var check = E2fsck.Check(image);
        Assert.True(check.Clean, check.ToString());
        var expected = Directory.CreateDirectory(temp.File("expected")).FullName;
        Tool.RunChecked("tar", "-xzf", ReferenceLayer, "-C", expected, "--numeric-owner", "-p", "--xattrs", "--xattrs-include=*");
        using var mount = Ext4Mount.Mount(image);
        FileTree.AssertSame(FileTree.FromDirectory(expected), FileTree.FromDirectory(mount.MountPoint, "lost+found"));
    }

    [Fact]
    public void ExportRefusesLayersAndAConfigTogether()
    {
        using var temp = new TempDir();
        var (code, _, stderr) = CliRunner.Run("export", temp.File("disk.img"), "--config", temp.File("config.v1.json"), temp.File("layer"));
        Assert.NotEqual(0, code);
        Assert.Contains("--config", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("disk.img")));
    }

    private static string Sha256Hex(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
}
