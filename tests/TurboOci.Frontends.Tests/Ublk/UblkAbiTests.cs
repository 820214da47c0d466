using System.Runtime.InteropServices;
using TurboOci.Interop.Linux;

namespace TurboOci.Frontends.Tests.Ublk;

/// <summary>
/// What the ublk server assumes of io_uring's entries beyond the kernel's headers (the structures and constants
/// themselves, io_uring's and ublk's, are checked against the headers in KernelAbiTests).
/// </summary>
public sealed class UblkAbiTests
{
    [Fact]
    public void The_control_command_fills_the_payload_of_a_128_byte_entry_and_the_io_command_fits_a_64_byte_one()
    {
        Assert.True(Marshal.SizeOf<UblkControlCommand>() <= 128 - IoUring.CommandOffset);
        Assert.True(Marshal.SizeOf<UblkControlCommand>() > 64 - IoUring.CommandOffset);
        Assert.True(Marshal.SizeOf<UblkIoCommand>() <= 64 - IoUring.CommandOffset);
    }
}
