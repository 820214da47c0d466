using Xunit.Abstractions;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// Our ublk server (io_uring URING_CMDs, two queues) against a real kernel, the 6.12 test VM with ublk_drv: the
/// <see cref="GuestStack"/> served read-only hashes like the host's raw export and mounts with the host's tree;
/// served read-write over a writable upper it keeps a create, an overwrite and a delete across detach and
/// re-attach, takes fstrim, and passes e2fsck; every device is gone after its detach. A RAM disk served
/// read-write gets write-zeroes, discards and flushes through to its source, and carries an ext4 that mkfs made.
/// Two devices served at once read their own sources; a failed source read reaches the reader as EIO.
/// </summary>
[Collection(FrontendGuestBoot.Collection)]
public sealed class UblkGuestTests(FrontendGuestBoot boot, ITestOutputHelper output)
{
    [Fact]
    public void A_read_only_stack_served_through_ublk_hashes_and_mounts_as_the_hosts_export_of_it()
    {
        var agent = boot.Agent("ublk-stack");
        output.WriteLine(boot.Timings);
        output.WriteLine(boot.Run.Stdout);
        Assert.True(agent.Failed.Count == 0, agent.ToString());
        Assert.Equal(
            new[]
            {
                "ublk-ro-size", "ublk-ro-write-protect", "ublk-ro-write-refused", "ublk-ro-sha256", "ublk-ro-mount", "ublk-ro-tree",
                "ublk-ro-umount", "ublk-ro-no-errors", "ublk-ro-detach",
            },
            agent.Passed.Where(p => p.StartsWith("ublk-ro-", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_read_write_stack_served_through_ublk_keeps_its_writes_across_detach_and_reattach_and_passes_e2fsck()
    {
        var agent = boot.Agent("ublk-stack");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "ublk-rw-writable", "ublk-rw-mount", "ublk-rw-sync", "ublk-rw-fstrim", "ublk-rw-umount", "ublk-rw-e2fsck", "ublk-rw-no-errors",
                "ublk-rw-upper-written", "ublk-rw-remount", "ublk-rw-created", "ublk-rw-overwritten", "ublk-rw-deleted",
                "ublk-rw-rest-unchanged", "ublk-rw-umount-again", "ublk-rw-detach",
            },
            agent.Passed.Where(p => p.StartsWith("ublk-rw-", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_ram_disk_served_through_ublk_gets_write_zeroes_discards_and_flushes_and_holds_the_ext4_mkfs_made()
    {
        var agent = boot.Agent("ublk-stack");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "ublk-ram-blkzeroout", "ublk-ram-write-zeroes", "ublk-ram-mkfs", "ublk-ram-discard", "ublk-ram-mount", "ublk-ram-sync",
                "ublk-ram-flush", "ublk-ram-umount", "ublk-ram-remount", "ublk-ram-payload", "ublk-ram-umount-again", "ublk-ram-e2fsck",
                "ublk-ram-source-has-ext4",
            },
            agent.Passed.Where(p => p.StartsWith("ublk-ram-", StringComparison.Ordinal)));
    }

    [Fact]
    public void Two_devices_are_served_at_once_and_a_failed_source_read_reaches_the_reader_as_eio()
    {
        var agent = boot.Agent("ublk-stack");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[] { "ublk-two-devices", "ublk-io-error", "ublk-io-error-counted", "ublk-after-io-error" },
            agent.Passed.Where(p => p.StartsWith("ublk-two-", StringComparison.Ordinal) || p.StartsWith("ublk-io-", StringComparison.Ordinal) || p.StartsWith("ublk-after-", StringComparison.Ordinal)));
    }
}
