using System.Security.Cryptography;
using System.Text.RegularExpressions;
using TurboOci.Testing;

namespace TurboOci.Testing.Tests;

/// <summary>Every fixture listed in fixtures/README.md is present and has the sha256 written there.</summary>
public sealed partial class FixtureIntegrityTests
{
    [GeneratedRegex(@"^\| `(?<path>[^`]+)` \| `(?<sha>[0-9a-f]{64})` \|", RegexOptions.Multiline)]
    private static partial Regex Row();

    private static List<(string Path, string Sha256)> ListedRows() =>
        Row().Matches(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "README.md")))
            .Select(m => (m.Groups["path"].Value, m.Groups["sha"].Value))
            .ToList();

    public static TheoryData<string, string> Listed()
    {
        var rows = new TheoryData<string, string>();
        foreach (var (path, sha) in ListedRows())
        {
            rows.Add(path, sha);
        }

        return rows;
    }

    [Theory]
    [MemberData(nameof(Listed))]
    public void FixtureHasTheListedSha256(string path, string sha256)
    {
        using var file = File.OpenRead(RepoPaths.Fixture(path.Split('/')));
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(file)));
    }

    [Fact]
    public void EveryReferenceFileIsListed()
    {
        var listed = ListedRows().Select(row => row.Path).ToHashSet();
        var present = Directory.GetFiles(Path.Combine(RepoPaths.Fixtures, "overlaybd-reference"), "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "README.md")
            .Select(f => Path.GetRelativePath(RepoPaths.Fixtures, f).Replace('\\', '/'));
        var unlisted = present.Where(p => !listed.Contains(p)).ToList();
        Assert.True(unlisted.Count == 0, $"not in fixtures/README.md: {string.Join(", ", unlisted)}");
        Assert.True(listed.Count >= 20, $"only {listed.Count} fixtures listed");
    }
}
