namespace TurboOci.Fuzz;

/// <summary>
/// One parser under fuzzing. <see cref="Run"/> feeds it arbitrary bytes; it may throw only the
/// exceptions the parser documents for bad input (<see cref="IsExpected"/>). Anything else, a
/// hang or a crash, is a bug. Targets are found by reflection; the corpus lives in
/// <c>fixtures/fuzz/&lt;Name&gt;/</c> and the test suite replays every file of it.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>The corpus folder name, such as "zfile".</summary>
    string Name { get; }

    /// <summary>Parses <paramref name="input"/> as far as the parser goes, reading any data it claims to hold.</summary>
    void Run(ReadOnlySpan<byte> input);

    /// <summary>Whether an exception is a proper "bad input" answer: by default a <see cref="TurboOci.Storage.TurboOciFormatException"/>.</summary>
    bool IsExpected(Exception exception) => exception is TurboOci.Storage.TurboOciFormatException;
}

/// <summary>Finds and runs targets.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } =
        typeof(FuzzTargets).Assembly.GetTypes()
            .Where(t => typeof(IFuzzTarget).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IFuzzTarget)Activator.CreateInstance(t)!)
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToList();

    public static IFuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no fuzz target '{name}'; known: {string.Join(", ", All.Select(t => t.Name))}");

    /// <summary>Runs one input; returns null when the target behaved, else the unexpected exception.</summary>
    public static Exception? RunOne(IFuzzTarget target, ReadOnlySpan<byte> input)
    {
        try
        {
            target.Run(input);
            return null;
        }
        catch (Exception e) when (target.IsExpected(e))
        {
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
