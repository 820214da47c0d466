using TurboOci.Testing.Vm;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// One boot of the kernel test VM for every block frontend's guest checks (each boot costs 25-90 s before its checks, which take 1-2 minutes each): the
/// <see cref="GuestStack"/> is built on the host, then the guest agent serves it through our ublk server
/// (<c>ublk-stack</c>), through our NBD server to the kernel's client on /dev/nbd0 (<c>nbd-stack</c>) and through
/// our TCMU handler (<c>tcmu-stack</c>, <c>tcmu-scsi</c>, <c>tcmu-recovery</c>). Each check runs in its own
/// agent process and its own output section, so a test reads only its check's PASS/FAIL lines and exit code.
/// </summary>
public sealed class FrontendGuestBoot : IDisposable
{
    public const string Collection = "frontend guest boot";

    private const string Script = """
        config="$1"; tree="$2"; sha="$3"; file="$4"; file_sha="$5"; agent="$6"
        # check NAME ARG...: runs the agent's check NAME in section @@NAME, then prints exit-NAME and seconds-NAME.
        check() {
          name="$1"; shift
          start=$(cut -d' ' -f1 /proc/uptime)
          echo "@@$name"
          dotnet "$agent" "$name" "$@"
          echo "exit-$name=$?"
          echo "@@end"
          echo "seconds-$name=$(awk -v s="$start" '{ print $1 - s }' /proc/uptime)"
        }
        check ublk-stack "$config" "$tree" "$sha"
        check nbd-stack /dev/nbd0 "$config" "$tree" "$sha"
        check tcmu-stack "$config" "$tree" "$sha"
        check tcmu-scsi "$config"
        check tcmu-recovery "$config" "$file" "$file_sha"
        """;

    private readonly GuestStack _stack = GuestStack.Create();

    public FrontendGuestBoot()
    {
        var scriptPath = Path.Combine(_stack.Folder, "frontends.sh");
        File.WriteAllText(scriptPath, Script);
        var fileSha = _stack.ExpectedTree.Entries[_stack.LargestFile].Sha256!;
        // Five checks in one boot took 7.5 minutes on a loaded 2-core machine: twice the default limit, so only a hang ends it.
        Run = GuestVm.RunFile(
            scriptPath,
            [_stack.ConfigPath, _stack.ExpectedTreePath, _stack.RawSha256, _stack.LargestFile, fileSha, GuestVm.GuestAgentPath],
            timeout: 2 * GuestVm.DefaultTimeout);
    }

    public GuestRunResult Run { get; }

    /// <summary>The agent's run of one check: its PASS/FAIL lines and exit code.</summary>
    public GuestAgentResult Agent(string check) => GuestAgentResult.FromNamedSection(Run, check);

    /// <summary>The guest seconds each check took, for the test output.</summary>
    public string Timings => $"boot: {Run.Elapsed.TotalSeconds:F1} s host wall clock; guest seconds per check: "
        + string.Join(", ", Run.Stdout.Split('\n').Where(l => l.StartsWith("seconds-", StringComparison.Ordinal)));

    public void Dispose() => _stack.Dispose();
}

[CollectionDefinition(FrontendGuestBoot.Collection)]
public sealed class FrontendGuestBootCollection : ICollectionFixture<FrontendGuestBoot>;
