using TurboOci.Testing.Vm;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// One boot of the kernel test VM for the ublk and NBD stack checks (each boot costs 25-40 s): the
/// <see cref="GuestStack"/> is built on the host, then the guest agent serves it through our ublk server
/// (<c>ublk-stack</c>) and through our NBD server to the kernel's NBD client on /dev/nbd0 (<c>nbd-stack</c>).
/// </summary>
public sealed class UblkGuestBoot : IDisposable
{
    public const string Collection = "ublk and nbd guest boot";

    private const string Script = """
        config="$1"; tree="$2"; sha="$3"; agent="$4"
        for check in ublk-stack nbd-stack; do
          start=$(cut -d' ' -f1 /proc/uptime)
          echo "@@$check"
          if [ "$check" = nbd-stack ]; then
            dotnet "$agent" nbd-stack /dev/nbd0 "$config" "$tree" "$sha"
          else
            dotnet "$agent" "$check" "$config" "$tree" "$sha"
          fi
          echo "exit-$check=$?"
          echo "@@end"
          echo "seconds-$check=$(awk -v s="$start" '{ print $1 - s }' /proc/uptime)"
        done
        """;

    private readonly GuestStack _stack = GuestStack.Create();

    public UblkGuestBoot()
    {
        var scriptPath = Path.Combine(_stack.Folder, "ublk-nbd.sh");
        File.WriteAllText(scriptPath, Script);
        Run = GuestVm.RunFile(scriptPath, [_stack.ConfigPath, _stack.ExpectedTreePath, _stack.RawSha256, GuestVm.GuestAgentPath]);
    }

    public GuestRunResult Run { get; }

    /// <summary>The agent's run of one check: its PASS/FAIL lines and exit code.</summary>
    public GuestAgentResult Agent(string check) => GuestAgentResult.FromNamedSection(Run, check);

    public void Dispose() => _stack.Dispose();
}

[CollectionDefinition(UblkGuestBoot.Collection)]
public sealed class UblkGuestBootCollection : ICollectionFixture<UblkGuestBoot>;
