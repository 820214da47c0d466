using TurboOci.Frontends.Ublk;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tests.Ublk;

/// <summary>What <see cref="UblkDevice.Start"/> refuses before it talks to the kernel (the device itself is tested in the guest: Guest/UblkGuestTests).</summary>
public sealed class UblkDeviceTests
{
    [Theory]
    [InlineData(0, 64)]
    [InlineData(1, 0)]
    [InlineData(1, 4097)]
    public void Queue_counts_and_depths_outside_what_the_driver_accepts_are_refused(int queues, int depth)
    {
        using var source = new MemoryBlockSource(new byte[4096]);
        Assert.Throws<ArgumentOutOfRangeException>(() => UblkDevice.Start(source, new UblkDeviceOptions { Queues = queues, QueueDepth = depth }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1000)]
    public void A_source_whose_size_is_not_whole_sectors_is_refused(int size)
    {
        using var source = new MemoryBlockSource(new byte[size]);
        var e = Assert.Throws<ArgumentException>(() => UblkDevice.Start(source, new UblkDeviceOptions()));
        Assert.Contains("multiple of 512", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_a_read_only_device_with_one_queue_of_64()
    {
        var options = new UblkDeviceOptions();
        Assert.True(options.ReadOnly);
        Assert.Equal(1, options.Queues);
        Assert.Equal(64, options.QueueDepth);
    }

    [Fact]
    public void Without_the_driver_start_says_which_module_to_load()
    {
        using var source = new MemoryBlockSource(new byte[4096]);
        var missing = Path.Combine(Path.GetTempPath(), $"turbooci-no-ublk-control-{Guid.NewGuid():N}");
        var e = Assert.Throws<NotSupportedException>(() => UblkDevice.Start(source, new UblkDeviceOptions(), missing));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.Contains("ublk_drv", e.Message, StringComparison.Ordinal);
    }
}
