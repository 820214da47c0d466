using System.Reflection;

namespace TurboOci.Architecture.Tests;

/// <summary>
/// The dependency direction is storage → formats → registry/images → frontends/daemon → CLI.
/// Formats never reference the network, the kernel or native interop: they must stay testable
/// with fixtures alone and usable offline.
/// </summary>
public sealed class LayeringTests
{
    private static readonly string[] s_formats =
        ["TurboOci.Formats.ZFile", "TurboOci.Formats.Lsmt", "TurboOci.Formats.GzipIndex", "TurboOci.Formats.Ext4"];

    private static readonly string[] s_forbiddenForFormats =
        ["TurboOci.Registry", "TurboOci.Images", "TurboOci.Interop", "TurboOci.Frontends", "TurboOci.Daemon", "turbooci", "System.Net.Http", "Mono.Posix"];

    private static List<string> ProductAssemblies() =>
        Directory.GetFiles(AppContext.BaseDirectory, "TurboOci.*.dll")
            .Select(f => Path.GetFileNameWithoutExtension(f)!)
            .Where(n => !n.EndsWith(".Tests", StringComparison.Ordinal) && n != "TurboOci.Testing")
            .Append("turbooci")
            .Order(StringComparer.Ordinal)
            .ToList();

    public static TheoryData<string> Assemblies() => new(ProductAssemblies());

    [Fact]
    public void AllProductAssembliesAreFound() =>
        Assert.Contains("TurboOci.Formats.Lsmt", ProductAssemblies());

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void FormatsReferenceNeitherNetworkNorKernelNorInterop(string name)
    {
        if (!s_formats.Contains(name))
        {
            return;
        }

        var references = Load(name).GetReferencedAssemblies().Select(a => a.Name!).ToList();
        var bad = references.Where(r => s_forbiddenForFormats.Any(f => r == f || r.StartsWith(f + ".", StringComparison.Ordinal))).ToList();
        Assert.True(bad.Count == 0, $"{name} references {string.Join(", ", bad)}");
    }

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void DependenciesPointDownOnly(string name)
    {
        var rank = Rank(name);
        var upward = Load(name).GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(r => r.StartsWith("TurboOci.", StringComparison.Ordinal) || r == "turbooci")
            .Where(r => Rank(r) >= rank && r != name)
            .ToList();
        Assert.True(upward.Count == 0, $"{name} (layer {rank}) references same-or-higher layers: {string.Join(", ", upward)}");
    }

    [Fact]
    public void StorageDependsOnNothingOfOurs() =>
        Assert.DoesNotContain(Load("TurboOci.Storage").GetReferencedAssemblies(), a => a.Name!.StartsWith("TurboOci.", StringComparison.Ordinal));

    /// <summary>The layer of each assembly; formats may reference formats of a lower rank only (LSMT uses ZFile).</summary>
    private static int Rank(string name) => name switch
    {
        "TurboOci.Storage" => 0,
        "TurboOci.Interop" => 1,
        "TurboOci.Formats.ZFile" => 2,
        "TurboOci.Formats.GzipIndex" => 2,
        "TurboOci.Formats.Lsmt" => 3,
        "TurboOci.Formats.Ext4" => 4,
        "TurboOci.Registry" => 5,
        "TurboOci.Images" => 6,
        "TurboOci.Frontends" => 7,
        "TurboOci.Daemon" => 8,
        "turbooci" => 9,
        _ => throw new InvalidOperationException($"{name} has no layer in LayeringTests.Rank: add it"),
    };

    private static Assembly Load(string name) => Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, name == "turbooci" ? "turbooci.dll" : name + ".dll"));
}
