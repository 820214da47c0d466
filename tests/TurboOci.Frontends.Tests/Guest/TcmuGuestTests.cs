using Xunit.Abstractions;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// Our TCMU handler against a real kernel (the 6.12 test VM, target_core_user + tcm_loop): the shared
/// <see cref="FrontendGuestBoot"/> serves the <see cref="GuestStack"/> through TCMU and the guest agent checks the disk's sha256 against the host's raw
/// export, the read-only ext4 tree against the host's mount of that export, a read-write stack's writes across
/// detach and re-attach with e2fsck clean, and recovery from a SIGKILLed handler while a reader is reading.
/// </summary>
[Collection(FrontendGuestBoot.Collection)]
public sealed class TcmuGuestTests(FrontendGuestBoot boot, ITestOutputHelper output)
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
        output.WriteLine(boot.Timings);
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
}
