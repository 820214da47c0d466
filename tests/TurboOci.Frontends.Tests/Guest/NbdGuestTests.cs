using Xunit.Abstractions;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>
/// Our NBD server against the kernel's NBD client (nbd-client on /dev/nbd0 in the 6.12 test VM): the
/// <see cref="GuestStack"/> exported read-only is write-protected, hashes like the host's raw export, mounts with
/// the host's tree, causes no protocol error, and the device is empty again after nbd-client -d.
/// </summary>
[Collection(FrontendGuestBoot.Collection)]
public sealed class NbdGuestTests(FrontendGuestBoot boot, ITestOutputHelper output)
{
    [Fact]
    public void A_stack_exported_by_our_nbd_server_hashes_and_mounts_on_nbd0_as_the_hosts_export_of_it()
    {
        var agent = boot.Agent("nbd-stack");
        output.WriteLine(agent.Run.Stdout);
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "nbd-ro-size", "nbd-ro-write-protect", "nbd-ro-write-refused", "nbd-ro-sha256", "nbd-ro-mount", "nbd-ro-tree",
                "nbd-ro-umount", "nbd-ro-no-errors", "nbd-ro-detach",
            },
            agent.Passed);
    }
}
