using System.Security.Cryptography;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.GzipIndex.Tests;

/// <summary>Against the index overlaybd itself wrote for inputs/layer.tar.gz (fixtures README, "gzip.meta, decoded").</summary>
public sealed class OverlaybdCompatibilityTests
{
    private static byte[] Layer => File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz"));

    private static byte[] OverlaybdIndex => File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta"));

    [Fact]
    public void SystemZlibIsTheVersionOverlaybdUsed() => Assert.Equal("1.2.13", SystemZlib.Version);

    [Fact]
    public void BuildGivesOverlaybdsIndexByteForByte()
    {
        var (index, result) = GzipTestData.BuildIndex(Layer);
        Assert.Equal("290c1ad43e51de5115acff918216eedd07c925f30e546fdcd2270d3a899729d7", Convert.ToHexStringLower(SHA256.HashData(index)));
        Assert.Equal(OverlaybdIndex, index);
        Assert.Equal(1, result.Members);
    }

    [Fact]
    public void BuildThroughTinyReadsIsTheSame()
    {
        // The consumer (a tar parser) may read in any sizes; the access points must not change.
        using var output = new MemoryStream();
        using (var indexing = new GzipIndexingStream(new MemoryStream(Layer), output, SystemZlib.Instance, SystemZlib.Instance))
        {
            var buffer = new byte[977];
            using var all = new MemoryStream();
            int read;
            while ((read = indexing.Read(buffer, 0, 1 + (int)(all.Length % 977))) > 0)
            {
                all.Write(buffer, 0, read);
            }

            Assert.Equal("aebbd5f3ec1d9cc614a9b681af16539e7923875cf10caa0e5e66a7ca16d2ac5c", Convert.ToHexStringLower(SHA256.HashData(all.ToArray())));
            indexing.Complete();
        }

        Assert.Equal(OverlaybdIndex, output.ToArray());
    }

    [Fact]
    public void ParsesOverlaybdsIndexAsDecodedInTheFixtureReadme()
    {
        var index = GzipSeekIndex.Load(new MemoryBlockSource(OverlaybdIndex), SystemZlib.Instance);
        var h = index.Header;
        Assert.Equal((1, 0, 1, 6, 0), (h.MajorVersion, h.MinorVersion, h.DictCompressAlgo, (int)h.DictCompressLevel, h.Flag));
        Assert.Equal((1048576, 32768, 29, 4L), (h.Span, h.Window, h.IndexSize, h.IndexNum));
        Assert.Equal((307572L, 7056L, 4044800L), (h.GzipFileSize, h.IndexFileSize, h.UncompressFileSize));
        Assert.Equal((6987L, 69L, 0xec883408u), (h.IndexStart, h.IndexAreaLen, h.Crc));
        Assert.Equal(
            [
                new GzipIndexEntry(0, 10, 333, 0, 52),
                new GzipIndexEntry(681963, 44148, 385, 6, 2209),
                new GzipIndexEntry(1894342, 122496, 2594, 2, 2208),
                new GzipIndexEntry(3106721, 200861, 4802, 6, 2185),
            ],
            index.Entries);
    }

    [Fact]
    public void ReadsThroughOverlaybdsIndex()
    {
        var expected = GzipTestData.GunzipReference(Layer);
        using var reader = GzipTestData.OpenReader(Layer, OverlaybdIndex);
        Assert.Equal(expected.Length, reader.Size);
        var all = new byte[reader.Size];
        Assert.Equal(all.Length, reader.ReadAt(0, all));
        Assert.Equal(expected, all);

        // overlaybd's own test reads (§11.3): edges, a byte, across spans, past the end.
        foreach (var (offset, length) in new (long, int)[] { (0, 1), (0, 10), (1_000_000, 1_000_000), (2_000_000, 1_500_000), (expected.Length - 10, 10), (expected.Length - 1, 1), (681962, 2), (3106721, 5) })
        {
            var buffer = new byte[length];
            Assert.Equal(length, reader.ReadAt(offset, buffer));
            Assert.Equal(expected.AsSpan((int)offset, length).ToArray(), buffer);
        }

        Assert.Equal(1, reader.ReadAt(expected.Length - 1, new byte[2]));
        Assert.Equal(400, reader.ReadAt(expected.Length - 400, new byte[1000]));
        Assert.Equal(0, reader.ReadAt(expected.Length, new byte[10]));
        Assert.Equal(0, reader.ReadAt(expected.Length + 100, new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => reader.ReadAt(-1, new byte[1]));
    }

    [Fact]
    public void RawWindowsVariantRoundTrips()
    {
        var (index, _) = GzipTestData.BuildIndex(Layer, new GzipIndexOptions { CompressWindows = false });
        var parsed = GzipSeekIndex.Load(new MemoryBlockSource(index), SystemZlib.Instance);
        Assert.Equal(0, parsed.Header.DictCompressAlgo);
        Assert.All(parsed.Entries, e => Assert.Equal(32768u, e.WinLen));
        using var reader = GzipTestData.OpenReader(Layer, index);
        var all = new byte[reader.Size];
        reader.ReadAt(0, all);
        Assert.Equal(GzipTestData.GunzipReference(Layer), all);
    }
}
