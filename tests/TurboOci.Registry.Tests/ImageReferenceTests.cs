namespace TurboOci.Registry.Tests;

public sealed class ImageReferenceTests
{
    private const string Hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("ubuntu", "docker.io", "library/ubuntu", "latest", null, "registry-1.docker.io")]
    [InlineData("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", null, "registry-1.docker.io")]
    [InlineData("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", null, "registry-1.docker.io")]
    [InlineData("index.docker.io/library/ubuntu:1", "docker.io", "library/ubuntu", "1", null, "registry-1.docker.io")]
    [InlineData("someone/app:v2", "docker.io", "someone/app", "v2", null, "registry-1.docker.io")]
    [InlineData("localhost/app", "localhost", "app", "latest", null, "localhost")]
    [InlineData("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", null, "127.0.0.1:5000")]
    [InlineData("reg.example:443/x@sha256:" + Hex, "reg.example:443", "x", null, "sha256:" + Hex, "reg.example:443")]
    [InlineData("reg.example/x:tag@sha256:" + Hex, "reg.example", "x", "tag", "sha256:" + Hex, "reg.example")]
    public void ParsesLikeDocker(string text, string registry, string repository, string? tag, string? digest, string endpoint)
    {
        var reference = ImageReference.Parse(text);
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(digest, reference.Digest?.ToString());
        Assert.Equal(endpoint, reference.Endpoint);
        Assert.Equal(digest ?? tag, reference.ManifestReference);
    }

    [Theory]
    [InlineData("")]
    [InlineData("UPPER/case")]
    [InlineData("host:5000/repo:bad tag")]
    [InlineData("repo@sha256:short")]
    [InlineData("repo@md5:" + Hex)]
    [InlineData("a//b")]
    [InlineData("repo:")]
    public void RejectsMalformedReferences(string text) =>
        Assert.False(ImageReference.TryParse(text, out _, out _));

    [Fact]
    public void DigestChecksContent()
    {
        var content = "hello"u8.ToArray();
        var digest = Digest.Sha256(content);
        Assert.Equal("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", digest.ToString());
        Assert.True(digest.Matches(content));
        Assert.Throws<Storage.TurboOciFormatException>(() => digest.Verify("hellO"u8, "blob"));
        Assert.False(Digest.TryParse("sha256:" + Hex.ToUpperInvariant(), out _));
    }
}
