using System.Security.Cryptography;
using TurboOci.Testing;

namespace TurboOci.Cli.Tests;

/// <summary>The zfile verbs, run as a user runs them, against overlaybd's reference files.</summary>
public sealed class ZFileCommandTests : IDisposable
{
    private const string InputSha256 = "07a92649cc034380a43f8ce0fdaa12228ef8d02033e1dec5be41f2d890077c84";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("zfile-cli");

    private static string Reference(string folder, string name) => RepoPaths.Fixture("overlaybd-reference", folder, name);

    private string Temp(string name) => Path.Combine(_dir.FullName, name);

    [Theory]
    [InlineData("input.lz4.zfile")]
    [InlineData("input.lz4.zfile.tar", "--tar")]
    [InlineData("input.zstd.zfile", "--algorithm", "zstd")]
    public void CompressWritesOverlaybdZFileToolsBytes(string reference, params string[] options)
    {
        var output = Temp("out");
        var (code, _, stderr) = CliRunner.Run(["zfile", "compress", Reference("inputs", "zfile-input.bin"), output, .. options]);
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Reference("zfile", reference)), File.ReadAllBytes(output));
    }

    [Theory]
    [InlineData("l1.commit.zstd", "--algorithm", "zstd", "--block-size", "4096", "--overwrite-header")]
    [InlineData("l1.commit.lz4.tar", "--tar", "--overwrite-header")] // overlaybd-commit -z -t
    public void CompressWithOverwrittenHeaderWritesOverlaybdCommitZBytes(string reference, params string[] options)
    {
        var output = Temp(reference);
        var (code, _, stderr) = CliRunner.Run(["zfile", "compress", Reference("lsmt", "l1.commit"), output, .. options]);
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllBytes(Reference("lsmt", reference)), File.ReadAllBytes(output));
    }

    [Theory]
    [InlineData("input.lz4.zfile")]
    [InlineData("input.zstd.zfile")]
    [InlineData("input.lz4-bs64.zfile")]
    [InlineData("input.lz4.zfile.tar")]
    public void DecompressGivesTheInput(string name)
    {
        var output = Temp("plain");
        var (code, _, stderr) = CliRunner.Run("zfile", "decompress", Reference("zfile", name), output);
        Assert.True(code == 0, stderr);
        Assert.Equal(InputSha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(output))));
    }

    [Fact]
    public void VerifyAcceptsGoodFilesAndExitsTwoOnADamagedBlock()
    {
        var (code, stdout, _) = CliRunner.Run("zfile", "verify", Reference("lsmt", "l1.commit.lz4.tar"));
        Assert.Equal(0, code);
        Assert.Contains("ok", stdout);

        var damaged = File.ReadAllBytes(Reference("zfile", "input.zstd.zfile"));
        damaged[100_000] ^= 0x10;
        File.WriteAllBytes(Temp("damaged"), damaged);
        (code, _, var stderr) = CliRunner.Run("zfile", "verify", Temp("damaged"));
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Matches(@"ZFile: block\[\d+\]\.crc at offset \d+", stderr);

        (code, _, stderr) = CliRunner.Run("zfile", "decompress", Temp("damaged"), Temp("plain"));
        Assert.Equal(ExitCodes.BadData, code);
        Assert.False(File.Exists(Temp("plain")), "a failed decompression must not leave a partial output");
    }

    [Fact]
    public void SixtyFourKiBBlocksOfIncompressibleDataFailWithoutLeavingAFile()
    {
        var (code, _, stderr) = CliRunner.Run("zfile", "compress", Reference("inputs", "zfile-input.bin"), Temp("bs64"), "--block-size", "64K");
        Assert.NotEqual(0, code);
        Assert.Contains("32 KiB", stderr);
        Assert.False(File.Exists(Temp("bs64")));
    }

    [Fact]
    public void BadBlockSizeIsAUsageError()
    {
        var (code, _, stderr) = CliRunner.Run("zfile", "compress", Reference("inputs", "zfile-input.bin"), Temp("x"), "--block-size", "4");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("4K", stderr);
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
