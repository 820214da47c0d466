using System.Text;
using TurboOci.Storage;

namespace TurboOci.Images.Tests;

public sealed class ImageConfigTests
{
    // What overlaybd's snapshotter writes for a TurboOCI image (shape from accelerated-container-image).
    private const string SnapshotterConfig = """
        {
          "repoBlobUrl": "https://registry.example/v2/library/redis/blobs",
          "lowers": [
            { "file": "/opt/overlaybd/baselayers/ext4_64" },
            { "dir": "/var/lib/snap/12/block", "digest": "sha256:aa", "size": 307572,
              "targetDigest": "sha256:bb", "gzipIndex": "/var/lib/snap/12/block/gzip.meta",
              "file": "/var/lib/snap/12/block/ext4.fs.meta" }
          ],
          "upper": { "index": "/var/lib/snap/13/block/writable_index", "data": "/var/lib/snap/13/block/writable_data" },
          "resultFile": "/var/lib/snap/13/block/init-debug.log",
          "imageRef": "registry.example/library/redis:7"
        }
        """;

    [Fact]
    public void ParsesWhatTheSnapshotterWritesAndIgnoresUnknownKeys()
    {
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(SnapshotterConfig));
        Assert.Equal("https://registry.example/v2/library/redis/blobs", config.RepoBlobUrl);
        Assert.Equal(2, config.Lowers.Count);
        Assert.False(config.Lowers[0].IsTurboOci);
        Assert.True(config.Lowers[1].IsTurboOci);
        Assert.Equal(307572, config.Lowers[1].Size);
        Assert.Equal("/var/lib/snap/12/block/gzip.meta", config.Lowers[1].GzipIndex);
        Assert.Equal("/var/lib/snap/13/block/writable_data", config.Upper!.Data);
    }

    [Fact]
    public void WriteThenParseRoundTrips()
    {
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(SnapshotterConfig));
        var again = ImageConfig.Parse(config.ToJson());
        Assert.Equal(config.RepoBlobUrl, again.RepoBlobUrl);
        Assert.Equal(config.Lowers, again.Lowers);
        Assert.Equal(config.Upper, again.Upper);
        Assert.Equal(config.ResultFile, again.ResultFile);
    }

    [Fact]
    public void UpperNeedsBothIndexAndData()
    {
        var config = ImageConfig.Parse("""{"lowers":[],"upper":{"index":"/x"}}"""u8);
        Assert.Null(config.Upper);
    }

    [Fact]
    public void RelativePathsResolveAgainstTheConfigFolder()
    {
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "config.v1.json");
        File.WriteAllText(path, """{"lowers":[{"file":"base/ext4_64"},{"file":"/abs/meta","targetFile":"layer.tar.gz","gzipIndex":"l/gzip.meta"}]}""");
        var config = ImageConfig.Load(path);
        Assert.Equal(Path.Combine(dir.Path, "base/ext4_64"), config.Lowers[0].File);
        Assert.Equal("/abs/meta", config.Lowers[1].File);
        Assert.Equal(Path.Combine(dir.Path, "layer.tar.gz"), config.Lowers[1].TargetFile);
        Assert.Equal(Path.Combine(dir.Path, "l/gzip.meta"), config.Lowers[1].GzipIndex);
    }

    [Theory]
    [InlineData("""{"lowers": {"file": "x"}}""", "/lowers", 11, "expected an array")]
    [InlineData("""{"lowers": [{"file": 7}]}""", "/lowers/0/file", 21, "expected a string")]
    [InlineData("""{"lowers": [{"size": -1}]}""", "/lowers/0/size", 21, "outside")]
    [InlineData("""{"lowers": [{"size": 1.5}]}""", "/lowers/0/size", 21, "expected an integer")]
    [InlineData("""{"accelerationLayer": "yes"}""", "/accelerationLayer", 22, "expected true or false")]
    [InlineData("""{"lowers": ["x"]}""", "/lowers/0", 12, "must be an object")]
    [InlineData("""[1, 2]""", "/", 0, "must be a JSON object")]
    [InlineData("""{"a": 1, "a": 2}""", "/a", 9, "twice")]
    [InlineData("""{"lowers": [}""", "/", 12, "not valid JSON")]
    [InlineData("", "/", 0, "not valid JSON")]
    public void BadConfigsNameTheKeyAndOffset(string json, string field, long offset, string problem)
    {
        var e = Assert.Throws<TurboOciFormatException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(ImageConfig.FormatName, e.Format);
        Assert.Equal(field, e.Field);
        Assert.Equal(offset, e.Offset);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void InvalidUtf8AndLoneSurrogatesAreBadInputNotCrashes()
    {
        byte[] invalidUtf8 = [.. "{\"lowers\":[{\"file\":\""u8, 0xC3, 0x28, .. "\"}]}"u8];
        var e = Assert.Throws<TurboOciFormatException>(() => ImageConfig.Parse(invalidUtf8));
        Assert.Equal("/lowers/0/file", e.Field);
        var surrogate = Assert.Throws<TurboOciFormatException>(() => ImageConfig.Parse("{\"resultFile\":\"\\ud800\"}"u8));
        Assert.Equal("/resultFile", surrogate.Field);
        Assert.Equal(14, surrogate.Offset);
    }

    [Fact]
    public void TooManyLowersAreRefused()
    {
        var json = "{\"lowers\":[" + string.Join(",", Enumerable.Repeat("{}", ImageConfig.MaxLowers + 1)) + "]}";
        var e = Assert.Throws<TurboOciFormatException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal("/lowers", e.Field);
    }

    [Fact]
    public void DeepNestingIsRefusedNotOverflowed()
    {
        var json = "{\"x\":" + new string('[', 10_000) + new string(']', 10_000) + "}";
        Assert.Throws<TurboOciFormatException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json)));
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("turbooci-config-").FullName;

        public void Dispose() => Directory.Delete(Path, true);
    }
}
