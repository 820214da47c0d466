using System.Globalization;

namespace TurboOci.Benchmarks;

/// <summary>The "--name value" options every peer benchmark takes.</summary>
internal static class BenchArgs
{
    public static string? Text(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static int Int(string[] args, string name, int fallback) =>
        Text(args, name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
