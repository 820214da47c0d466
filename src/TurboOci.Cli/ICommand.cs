namespace TurboOci.Cli;

/// <summary>
/// One verb of the command line. Each verb is a class with CommandLineParser's
/// <see cref="CommandLine.VerbAttribute"/>; verbs that belong to a group (<c>turbooci zfile compress</c>)
/// also carry <see cref="VerbGroupAttribute"/>. Program finds them by reflection, so adding a verb
/// means adding one file.
/// </summary>
public interface ICommand
{
    /// <summary>Runs the verb and returns the process exit code.</summary>
    Task<int> RunAsync(CancellationToken cancellationToken);
}

/// <summary>Puts a verb under a group word: <c>[VerbGroup("zfile")]</c> + <c>[Verb("compress")]</c> is <c>turbooci zfile compress</c>.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class VerbGroupAttribute(string name, string helpText) : Attribute
{
    public string Name { get; } = name;

    public string HelpText { get; } = helpText;
}
