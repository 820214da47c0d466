using System.Diagnostics;

namespace TurboOci.Testing.Vm;

/// <summary>What one guest boot returned: the script's exit code and output, and the guest's console.</summary>
/// <param name="ExitCode">The script's exit code (124: the guest timed out; 125: the script never ran).</param>
/// <param name="Stdout">The script's stdout, carried back through the result share.</param>
/// <param name="Stderr">The script's stderr (then any message of tools/vm/run itself).</param>
/// <param name="ConsoleLog">The guest's serial console: kernel messages and the init's timed steps.</param>
/// <param name="Elapsed">Host wall-clock time of the whole boot, script and power-off.</param>
public sealed record GuestRunResult(int ExitCode, string Stdout, string Stderr, string ConsoleLog, TimeSpan Elapsed)
{
    /// <summary>Everything, for assertion messages.</summary>
    public override string ToString() =>
        $"exit {ExitCode} after {Elapsed.TotalSeconds:F1} s\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}\n--- console\n{ConsoleLog}";
}

/// <summary>
/// The kernel test VM (tools/vm/run): boots the Debian bookworm-backports 6.12 kernel under qemu with the
/// TCMU, tcm_loop, NBD, ublk, loop and ext4 modules loaded, and runs a bash script as root in a chroot of
/// this machine's root file system (read-only over 9p, same paths, a writable /tmp that shows the host's).
/// Host-built binaries and <c>dotnet</c> therefore run in the guest as they are. Each call is one boot
/// (about 25 s on an idle 2-core machine, more under load): put several checks into one script.
/// </summary>
public static class GuestVm
{
    /// <summary>Generous: TCG emulation on a loaded 2-core machine can be several times slower than idle.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    /// <summary>tools/vm/run in this repository.</summary>
    public static string RunTool => Path.Combine(RepoPaths.Root, "tools", "vm", "run");

    /// <summary>
    /// Boots the guest and runs <paramref name="script"/> (bash source text) in it, in the current working
    /// directory, with <paramref name="environment"/> set. Does not throw for a non-zero exit: check
    /// <see cref="GuestRunResult.ExitCode"/>.
    /// </summary>
    public static GuestRunResult Run(string script, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var temp = new TempDir("turbooci-vm-");
        var scriptPath = temp.File("script.sh");
        File.WriteAllText(scriptPath, script);
        return RunFile(scriptPath, [], timeout, environment, temp);
    }

    /// <summary>Boots the guest and runs the host script file <paramref name="scriptPath"/> with <paramref name="args"/>.</summary>
    public static GuestRunResult RunFile(
        string scriptPath,
        IEnumerable<string> args,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null) =>
        RunFile(scriptPath, args, timeout, environment, scratch: null);

    private static GuestRunResult RunFile(
        string scriptPath,
        IEnumerable<string> args,
        TimeSpan? timeout,
        IReadOnlyDictionary<string, string>? environment,
        TempDir? scratch)
    {
        var limit = timeout ?? DefaultTimeout;
        using var ownScratch = scratch is null ? new TempDir("turbooci-vm-") : null;
        var consolePath = (scratch ?? ownScratch!).File("console.log");
        var runArgs = new List<string> { "--timeout", ((int)Math.Ceiling(limit.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture), "--console", consolePath };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            runArgs.Add("--env");
            runArgs.Add($"{name}={value}");
        }

        runArgs.Add("--");
        runArgs.Add(Path.GetFullPath(scriptPath));
        runArgs.AddRange(args);

        // One guest at a time on this machine: test assemblies run in parallel, and several emulated guests on two
        // cores slow each other past the kernel's and the tests' time limits. The limit starts once we hold the slot.
        using var slot = AcquireMachineSlot();
        var clock = Stopwatch.StartNew();
        // tools/vm/run enforces the limit itself (exit 124); the extra minute covers preparation and power-off.
        var result = Tool.Run(RunTool, runArgs, limit + TimeSpan.FromMinutes(1));
        clock.Stop();
        var console = File.Exists(consolePath) ? File.ReadAllText(consolePath) : "";
        return new GuestRunResult(result.ExitCode, result.Stdout, result.Stderr, console, clock.Elapsed);
    }

    /// <summary>
    /// An exclusive lock on a file shared by every test process of the machine (.NET takes an advisory flock for
    /// FileShare.None), held until disposed; waits for the guest that holds it, at most an hour.
    /// </summary>
    private static FileStream AcquireMachineSlot()
    {
        var path = Path.Combine(Path.GetTempPath(), "turbooci-vm.lock");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (deadline.Elapsed < TimeSpan.FromHours(1))
            {
                Thread.Sleep(500);
            }
        }
    }

    /// <summary>The line the script prints before the agent's output starts (see <see cref="RunAgent"/>).</summary>
    public const string AgentOutputMarker = "@@agent";

    /// <summary>
    /// Boots the guest and runs the guest agent (tests/TurboOci.GuestAgent, built beside the calling test
    /// assembly) with <paramref name="args"/>, after <paramref name="prelude"/> (bash, e.g. starting a
    /// server the agent talks to). The agent prints one PASS or FAIL line per check; the result holds the
    /// lines printed after the prelude and the agent's exit code.
    /// </summary>
    public static GuestAgentResult RunAgent(IEnumerable<string> args, string prelude = "", TimeSpan? timeout = null)
    {
        var command = string.Join(' ', new[] { "exec", "dotnet", GuestAgentPath }.Concat(args).Select(ShellQuote));
        var run = Run($"{prelude}\necho {AgentOutputMarker}\n{command}\n", timeout);
        return GuestAgentResult.FromSection(run, AgentOutputMarker, run.ExitCode);
    }

    /// <summary>
    /// The guest agent's dll: the test project references TurboOci.GuestAgent, so the build copies it next
    /// to the test assembly. The guest sees the same path through the host root share.
    /// </summary>
    public static string GuestAgentPath
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "TurboOci.GuestAgent.dll");
            return File.Exists(path)
                ? path
                : throw new FileNotFoundException("TurboOci.GuestAgent.dll is not beside the test assembly: reference tests/TurboOci.GuestAgent from the test project", path);
        }
    }

    /// <summary>Quotes one word for bash.</summary>
    public static string ShellQuote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>The guest agent's run: the boot's result plus its PASS/FAIL lines.</summary>
public sealed class GuestAgentResult(GuestRunResult run)
{
    /// <summary>The line that ends a section started by a marker line (the end of stdout ends it too).</summary>
    public const string SectionEnd = "@@end";

    /// <summary>
    /// The agent run whose output is the lines of <paramref name="run"/>'s stdout between the line
    /// <paramref name="marker"/> and the next <see cref="SectionEnd"/> line, and whose exit code is
    /// <paramref name="exitCode"/> (one boot can run the agent several times, each in its own section).
    /// </summary>
    public static GuestAgentResult FromSection(GuestRunResult run, string marker, int exitCode)
    {
        var section = run.Stdout.Split('\n').SkipWhile(line => line != marker).Skip(1).TakeWhile(line => line != SectionEnd);
        return new GuestAgentResult(run with { ExitCode = exitCode, Stdout = string.Join('\n', section) });
    }

    /// <summary>
    /// The agent run of the section <c>@@NAME</c> whose exit code the script printed as <c>exit-NAME=CODE</c>
    /// after it (the shape a script gets from <c>echo "@@$n"; dotnet "$agent" $n ...; echo "exit-$n=$?"; echo "@@end"</c>).
    /// Fails the test with the whole run when the script printed no such exit line.
    /// </summary>
    public static GuestAgentResult FromNamedSection(GuestRunResult run, string name)
    {
        var exitLine = run.Stdout.Split('\n').FirstOrDefault(line => line.StartsWith($"exit-{name}=", StringComparison.Ordinal));
        Xunit.Assert.True(exitLine is not null, $"the guest printed no exit-{name}= line\n{run}");
        return FromSection(run, "@@" + name, int.Parse(exitLine![(name.Length + 6)..].Trim(), System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The whole boot.</summary>
    public GuestRunResult Run { get; } = run;

    /// <summary>The names of the checks that printed <c>PASS name: detail</c>.</summary>
    public IReadOnlyList<string> Passed { get; } = CheckNames(run.Stdout, "PASS ");

    /// <summary>The names of the checks that printed <c>FAIL name: detail</c>.</summary>
    public IReadOnlyList<string> Failed { get; } = CheckNames(run.Stdout, "FAIL ");

    /// <summary>True when the agent exited 0, printed at least one PASS and no FAIL.</summary>
    public bool AllPassed => Run.ExitCode == 0 && Passed.Count > 0 && Failed.Count == 0;

    public override string ToString() => Run.ToString();

    private static string[] CheckNames(string stdout, string prefix) =>
        stdout.Split('\n')
            .Where(line => line.StartsWith(prefix, StringComparison.Ordinal))
            .Select(line => line[prefix.Length..].Split(':', 2)[0].Trim())
            .ToArray();
}
