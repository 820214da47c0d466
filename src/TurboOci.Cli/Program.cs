using System.Reflection;
using CommandLine;
using CommandLine.Text;

namespace TurboOci.Cli;

public static class Program
{
    private const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static async Task<int> Main(string[] args)
    {
        // Socket completions run on the socket engine's thread instead of hopping to the thread pool: a registry
        // body read or an NBD request then costs no wake-up of a pool thread (remote sequential read 0.85 -> 0.96x
        // curl at 0.33 instead of 0.42 s of CPU per GB; NBD QD16 1.8 -> 2.35x qemu-nbd). Read when the first socket is
        // made. Our socket code never blocks there: RegistryClient's calls and the P2P probe return on the thread
        // pool, the NBD server and the control socket hand requests to it. tests/TurboOci.Benchmarks does the same.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        }

        using var cancellation = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancellation.Cancel();
        };

        var verbs = DiscoverVerbs();
        var groups = verbs.Where(v => v.Group is not null).GroupBy(v => v.Group!.Name).ToDictionary(g => g.Key, g => g.ToList());
        var topLevel = verbs.Where(v => v.Group is null).ToList();

        if (args.Length == 0 || args[0] is "--help" or "-h" or "help" && args.Length == 1)
        {
            PrintOverview(topLevel, groups);
            return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Success;
        }

        if (args[0] == "--version")
        {
            Console.WriteLine($"turbooci {typeof(Program).Assembly.GetName().Version}");
            return ExitCodes.Success;
        }

        string prefix = "turbooci";
        IReadOnlyList<VerbInfo> candidates = topLevel;
        var verbArgs = args;
        if (groups.TryGetValue(args[0], out var group))
        {
            prefix = $"turbooci {args[0]}";
            candidates = group;
            verbArgs = args[1..];
            if (verbArgs.Length == 0 || verbArgs is ["--help" or "-h" or "help"])
            {
                PrintGroup(args[0], group);
                return verbArgs.Length == 0 ? ExitCodes.Usage : ExitCodes.Success;
            }
        }

        var parser = new Parser(settings =>
        {
            settings.HelpWriter = null;
            settings.CaseInsensitiveEnumValues = true;
        });
        var result = parser.ParseArguments(verbArgs, candidates.Select(v => v.Type).ToArray());
        if (result is Parsed<object> { Value: ICommand command })
        {
            return await RunAsync(command, cancellation.Token).ConfigureAwait(false);
        }

        var errors = ((NotParsed<object>)result).Errors.ToList();
        var asked = errors.Any(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError or ErrorType.VersionRequestedError);
        var help = HelpText.AutoBuild(result, h =>
        {
            h.Heading = verbArgs.Length > 0 && candidates.Any(v => v.Verb.Name == verbArgs[0]) ? $"{prefix} {verbArgs[0]}" : prefix;
            h.Copyright = string.Empty;
            h.AddDashesToOption = true;
            h.AdditionalNewLineAfterOption = false;
            h.MaximumDisplayWidth = 110;
            return HelpText.DefaultParsingErrorsHandler(result, h);
        }, e => e, verbsIndex: errors.Any(e => e.Tag is ErrorType.NoVerbSelectedError or ErrorType.BadVerbSelectedError));
        (asked ? Console.Out : Console.Error).WriteLine(help);
        return asked ? ExitCodes.Success : ExitCodes.Usage;
    }

    private static async Task<int> RunAsync(ICommand command, CancellationToken cancellationToken)
    {
        try
        {
            return await command.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Console.Error.WriteLine("turbooci: cancelled");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (e is TurboOci.Storage.TurboOciFormatException or InvalidDataException)
        {
            Console.Error.WriteLine($"turbooci: bad data: {e.Message}");
            return ExitCodes.BadData;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"turbooci: {e.Message}");
            return ExitCodes.IoError;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"turbooci: I/O error: {e.Message}");
            return ExitCodes.IoError;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or NotSupportedException)
        {
            Console.Error.WriteLine($"turbooci: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("TURBOOCI_DEBUG") is null)
        {
            Console.Error.WriteLine($"turbooci: {e.GetType().Name}: {e.Message}");
            return ExitCodes.Failure;
        }
    }

    private static void PrintOverview(List<VerbInfo> topLevel, Dictionary<string, List<VerbInfo>> groups)
    {
        Console.WriteLine("turbooci: lazy-loading OCI images at the block level, compatible with overlaybd and TurboOCIv1.");
        Console.WriteLine();
        Console.WriteLine("Usage: turbooci VERB [options]        turbooci GROUP VERB [options]");
        Console.WriteLine("       turbooci VERB --help           for the options of one verb");
        Console.WriteLine();
        if (topLevel.Count > 0)
        {
            Console.WriteLine("Verbs:");
            foreach (var verb in topLevel.OrderBy(v => v.Verb.Name, StringComparer.Ordinal))
            {
                Console.WriteLine($"  {verb.Verb.Name,-22} {verb.Verb.HelpText}");
            }

            Console.WriteLine();
        }

        foreach (var (name, members) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            PrintGroup(name, members);
            Console.WriteLine();
        }

        Console.WriteLine("Exit codes: 0 ok, 1 usage, 2 bad data (corrupt or wrong input), 3 I/O error, 4 other failure.");
    }

    private static void PrintGroup(string name, List<VerbInfo> members)
    {
        Console.WriteLine($"{name}: {members[0].Group!.HelpText}");
        foreach (var verb in members.OrderBy(v => v.Verb.Name, StringComparer.Ordinal))
        {
            Console.WriteLine($"  {name} {verb.Verb.Name,-16} {verb.Verb.HelpText}");
        }
    }

    private static List<VerbInfo> DiscoverVerbs() =>
        typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICommand).IsAssignableFrom(t) && !t.IsAbstract && t.GetCustomAttribute<VerbAttribute>() is not null)
            .Select(t => new VerbInfo(t, t.GetCustomAttribute<VerbAttribute>()!, t.GetCustomAttribute<VerbGroupAttribute>()))
            .ToList();

    private sealed record VerbInfo(Type Type, VerbAttribute Verb, VerbGroupAttribute? Group);
}
