using TurboOci.Storage;

namespace TurboOci.Formats.ZFile.Tests;

public sealed class TarEnvelopeTests
{
    [Theory]
    [InlineData("zfile", "input.lz4.zfile.tar", "input.lz4.zfile")]
    [InlineData("lsmt", "l1.commit.lz4.tar", "l1.commit.lz4")]
    [InlineData("overlaybd-apply", "overlaybd.commit.lz4.tar", "overlaybd.commit.lz4")]
    public void OverlaybdEnvelopeOpensWithoutCopyAtOffset1536(string folder, string tarName, string payloadName)
    {
        using var blob = FileBlockSource.OpenRead(Fixtures.Reference(folder, tarName));
        Assert.True(TarEnvelope.TryOpen(blob, out var payload));
        using (payload)
        {
            Assert.Same(blob, payload.Inner); // a window on the blob, not a copy
            Assert.Equal(TarEnvelope.PaxPayloadOffset, payload.Start);
            var expected = File.ReadAllBytes(Fixtures.Reference(folder, payloadName));
            Assert.Equal(expected, Fixtures.ReadAll(payload));
        }
    }

    [Fact]
    public void TarWrappedZFileDecompressesToTheInput()
    {
        using var blob = FileBlockSource.OpenRead(Fixtures.ZFile("input.lz4.zfile.tar"));
        Assert.True(TarEnvelope.TryOpen(blob, out var payload));
        using var zfile = ZFileReader.Open(payload);
        Assert.Equal(Fixtures.InputSha256, Fixtures.Sha256Of(zfile));
    }

    [Fact]
    public void TarWrappedCommitDecompressesToTheCommit()
    {
        using var blob = FileBlockSource.OpenRead(Fixtures.Lsmt("l1.commit.lz4.tar"));
        Assert.True(TarEnvelope.TryOpen(blob, out var payload));
        using var zfile = ZFileReader.Open(payload);
        Assert.Equal(File.ReadAllBytes(Fixtures.Lsmt("l1.commit")), Fixtures.ReadAll(zfile));
    }

    [Theory]
    [InlineData("zfile", "input.lz4.zfile", "input.lz4.zfile.tar")]
    [InlineData("lsmt", "l1.commit.lz4", "l1.commit.lz4.tar")]
    [InlineData("overlaybd-apply", "overlaybd.commit.lz4", "overlaybd.commit.lz4.tar")]
    public void WritingTheEnvelopeGivesOverlaybdsBytes(string folder, string payloadName, string tarName)
    {
        var payload = File.ReadAllBytes(Fixtures.Reference(folder, payloadName));
        var expected = File.ReadAllBytes(Fixtures.Reference(folder, tarName));

        using var fromSource = new MemoryStream();
        TarEnvelope.Write(fromSource, new MemoryBlockSource(payload));
        Assert.Equal(expected, fromSource.ToArray());

        using var fromStream = new MemoryStream();
        TarEnvelope.Write(fromStream, new MemoryStream(payload), payload.Length);
        Assert.Equal(expected, fromStream.ToArray());
        Assert.Equal(expected.Length, TarEnvelope.GetEnvelopeLength(payload.Length));
    }

    [Fact]
    public void PlainUstarEnvelopeAsGoWritesItPutsThePayloadAt512()
    {
        // Go's archive/tar: one ustar header, mode 0444, no PAX. Built with the tar tool to not depend on our writer.
        var payload = Fixtures.MixedData(5000, 3);
        var dir = Directory.CreateTempSubdirectory("zfile-tar");
        try
        {
            File.WriteAllBytes(Path.Combine(dir.FullName, "overlaybd.commit"), payload);
            var tarPath = Path.Combine(dir.FullName, "blob.tar");
            RunTar(dir.FullName, "--format=ustar", "--mode=0444", "-cf", tarPath, "overlaybd.commit");
            using var blob = FileBlockSource.OpenRead(tarPath);
            Assert.True(TarEnvelope.TryOpen(blob, out var slice));
            Assert.Equal(TarEnvelope.UstarPayloadOffset, slice.Start);
            Assert.Equal(payload, Fixtures.ReadAll(slice));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void GnuTarAndNonTarBlobsAreNotEnvelopes()
    {
        Assert.False(TarEnvelope.TryOpen(new MemoryBlockSource(File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile"))), out _));
        Assert.False(TarEnvelope.TryOpen(new MemoryBlockSource(new byte[100]), out _));
        var gnu = File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile.tar"));
        "ustar  \0"u8.CopyTo(gnu.AsSpan(257)); // GNU magic: overlaybd reads such a blob raw
        Assert.False(TarEnvelope.TryOpen(new MemoryBlockSource(gnu), out _));
        var badChecksum = File.ReadAllBytes(Fixtures.ZFile("input.lz4.zfile.tar"));
        badChecksum[0] ^= 1;
        Assert.False(TarEnvelope.TryOpen(new MemoryBlockSource(badChecksum), out _));
    }

    [Fact]
    public void EmptyPayloadRoundTrips()
    {
        using var output = new MemoryStream();
        TarEnvelope.Write(output, new MemoryBlockSource([]));
        Assert.Equal(TarEnvelope.PaxPayloadOffset + 1024, output.Length);
        Assert.True(TarEnvelope.TryOpen(new MemoryBlockSource(output.ToArray()), out var payload));
        Assert.Equal(0, payload.Size);
    }

    private static void RunTar(string workingDirectory, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo("tar") { WorkingDirectory = workingDirectory, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"tar failed: {stderr}");
    }
}
