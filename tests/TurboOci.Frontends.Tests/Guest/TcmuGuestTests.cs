using System.Globalization;
using TurboOci.Testing.Vm;
using Xunit.Abstractions;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// Our TCMU handler against a real kernel (the 6.12 test VM, target_core_user + tcm_loop): one boot serves the
/// <see cref="GuestStack"/> through TCMU and the guest agent checks the disk's sha256 against the host's raw
/// export, the read-only ext4 tree against the host's mount of that export, a read-write stack's writes across
/// detach and re-attach with e2fsck clean, and recovery from a SIGKILLed handler while a reader is reading.
/// </summary>
public sealed class TcmuGuestTests(TcmuGuestTests.Boot boot, ITestOutputHelper output) : IClassFixture<TcmuGuestTests.Boot>
{
    [Fact]
    public void AReadOnlyStackServedThroughTcmuHashesAndMountsAsTheHostsExportOfIt()
    {
        var agent = boot.Agent("tcmu-stack");
        output.WriteLine(agent.Run.Stdout);
        Assert.True(agent.Failed.Count == 0, agent.ToString());
        Assert.Equal(
            new[] { "tcmu-ro-size", "tcmu-ro-write-protect", "tcmu-ro-write-refused", "tcmu-ro-sha256", "tcmu-ro-mount", "tcmu-ro-tree", "tcmu-ro-umount", "tcmu-ro-no-errors", "tcmu-ro-detach" },
            agent.Passed.Where(p => p.StartsWith("tcmu-ro-", StringComparison.Ordinal)));
    }

    [Fact]
    public void AReadWriteStackKeepsItsWritesAcrossDetachAndReattachAndPassesE2fsck()
    {
        var agent = boot.Agent("tcmu-stack");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "tcmu-rw-writable", "tcmu-rw-mount", "tcmu-rw-sync", "tcmu-rw-fstrim", "tcmu-rw-umount", "tcmu-rw-e2fsck", "tcmu-rw-no-errors", "tcmu-rw-upper-written",
                "tcmu-rw-remount", "tcmu-rw-created", "tcmu-rw-overwritten", "tcmu-rw-deleted", "tcmu-rw-rest-unchanged", "tcmu-rw-umount-again", "tcmu-rw-detach",
            },
            agent.Passed.Where(p => p.StartsWith("tcmu-rw-", StringComparison.Ordinal)));
    }

    [Fact]
    public void AReaderFinishesWithCorrectDataAndNoIoErrorWhenTheHandlerIsKilledAndRestarted()
    {
        var agent = boot.Agent("tcmu-recovery");
        output.WriteLine(agent.Run.Stdout);
        output.WriteLine($"boot: {boot.Run.Elapsed.TotalSeconds:F1} s host wall clock; guest uptime marks: "
            + string.Join(", ", boot.Run.Stdout.Split('\n').Where(l => l.StartsWith("time-", StringComparison.Ordinal))));
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "tcmu-recovery-attach", "tcmu-recovery-mount", "tcmu-recovery-killed", "tcmu-recovery-adopt", "tcmu-recovery-reader",
                "tcmu-recovery-no-io-errors", "tcmu-recovery-umount", "tcmu-recovery-detach",
            },
            agent.Passed);
    }

    [Fact]
    public void Sg3UtilsThroughTheGuestKernelReadOurIdentityCapacityLimitsOpcodesAndSense()
    {
        var agent = boot.Agent("tcmu-scsi");
        output.WriteLine(agent.Run.Stdout);
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "tcmu-sg-inquiry", "tcmu-sg-serial", "tcmu-sg-capacity", "tcmu-sg-block-limits", "tcmu-sg-opcodes", "tcmu-sg-unknown-opcode",
                "tcmu-sg-write-protected", "tcmu-sg-out-of-range", "tcmu-sg-no-medium-errors",
            },
            agent.Passed);
    }

    /// <summary>The stack, built on the host, and the one boot all facts share.</summary>
    public sealed class Boot : IDisposable
    {
        private const string Script = """
            config="$1"; tree="$2"; sha="$3"; file="$4"; agent="$5"
            echo "time-start=$(cut -d' ' -f1 /proc/uptime)"
            echo "@@tcmu-stack"
            dotnet "$agent" tcmu-stack "$config" "$tree" "$sha"
            echo "exit-tcmu-stack=$?"
            echo "@@end"
            echo "time-tcmu-stack=$(cut -d' ' -f1 /proc/uptime)"
            echo "@@tcmu-scsi"
            dotnet "$agent" tcmu-scsi "$config"
            echo "exit-tcmu-scsi=$?"
            echo "@@end"
            echo "time-tcmu-scsi=$(cut -d' ' -f1 /proc/uptime)"
            echo "@@tcmu-recovery"
            dotnet "$agent" tcmu-recovery "$config" "$file" "$4-sha"
            echo "exit-tcmu-recovery=$?"
            echo "@@end"
            echo "time-tcmu-recovery=$(cut -d' ' -f1 /proc/uptime)"
            """;

        private readonly GuestStack _stack = GuestStack.Create();

        public Boot()
        {
            var scriptPath = Path.Combine(_stack.Folder, "tcmu.sh");
            var fileSha = _stack.ExpectedTree.Entries[_stack.LargestFile].Sha256!;
            File.WriteAllText(scriptPath, Script.Replace("\"$4-sha\"", GuestVm.ShellQuote(fileSha), StringComparison.Ordinal));
            Run = GuestVm.RunFile(scriptPath, [_stack.ConfigPath, _stack.ExpectedTreePath, _stack.RawSha256, _stack.LargestFile, GuestVm.GuestAgentPath]);
        }

        public GuestRunResult Run { get; }

        public GuestAgentResult Agent(string section)
        {
            var exitLine = Run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith($"exit-{section}=", StringComparison.Ordinal));
            Assert.True(exitLine is not null, $"the guest printed no exit-{section}= line\n{Run}");
            return GuestAgentResult.FromSection(Run, "@@" + section, int.Parse(exitLine!.Split('=')[1], CultureInfo.InvariantCulture));
        }

        public void Dispose() => _stack.Dispose();
    }
}
