using TurboOci.Fuzz;
using TurboOci.Testing;

namespace TurboOci.Fuzz.Tests;

/// <summary>Replays every saved fuzz input of every target: each must be accepted or refused cleanly.</summary>
public sealed class CorpusReplayTests
{
    public static TheoryData<string> Targets()
    {
        var data = new TheoryData<string>();
        foreach (var target in FuzzTargets.All)
        {
            data.Add(target.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void EveryCorpusInputIsHandledCleanly(string name)
    {
        var target = FuzzTargets.Get(name);
        var dir = RepoPaths.Fixture("fuzz", name);
        var files = Directory.GetFiles(dir);
        Assert.NotEmpty(files);
        var failures = files
            .Select(f => (File: Path.GetFileName(f), Error: FuzzTargets.RunOne(target, File.ReadAllBytes(f))))
            .Where(r => r.Error is not null)
            .Select(r => $"{r.File}: {r.Error}")
            .ToList();
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public void MutationsOfTheCorpusAreHandledCleanly()
    {
        // A short, seeded slice of the mutation fuzzer, so every CI run also explores a little.
        var random = new Random(20261128);
        foreach (var target in FuzzTargets.All)
        {
            var corpus = Directory.GetFiles(RepoPaths.Fixture("fuzz", target.Name)).Select(File.ReadAllBytes).ToArray();
            for (var i = 0; i < 300; i++)
            {
                var input = Mutator.Mutate(corpus[random.Next(corpus.Length)], corpus[random.Next(corpus.Length)], random);
                var error = FuzzTargets.RunOne(target, input);
                Assert.True(error is null, $"{target.Name}: input {Convert.ToHexString(input.AsSpan(0, Math.Min(64, input.Length)))}...: {error}");
            }
        }
    }
}
