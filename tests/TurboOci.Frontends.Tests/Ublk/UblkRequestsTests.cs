using System.Security.Cryptography;
using TurboOci.Frontends.Ublk;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tests.Ublk;

/// <summary>How one ublk descriptor is served from a block source (what the queue thread commits), without a kernel.</summary>
public sealed class UblkRequestsTests
{
    private const int Size = 1 << 20;
    private readonly byte[] _original = RandomNumberGenerator.GetBytes(Size);

    [Fact]
    public void A_read_fills_the_buffer_from_the_source_and_commits_its_byte_count()
    {
        var source = Source(writable: false, out _);
        var buffer = new byte[UblkDevice.MaxIoBytes];
        var result = UblkRequests.Serve(source, readOnly: true, Request(UblkConstants.IoOpRead, sector: 24, sectors: 16), buffer);
        Assert.Equal(16 * 512, result);
        Assert.Equal(_original.AsSpan(24 * 512, 16 * 512).ToArray(), buffer.AsSpan(0, 16 * 512).ToArray());
        Assert.Empty(source.Violations);
    }

    [Fact]
    public void A_write_lands_in_the_source_and_fua_flushes_it()
    {
        var source = Source(writable: true, out var memory);
        var buffer = RandomNumberGenerator.GetBytes(UblkDevice.MaxIoBytes);
        Assert.Equal(8 * 512, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpWrite, 100, 8), buffer));
        Assert.Equal(0, source.Flushes);
        Assert.Equal(buffer.AsSpan(0, 4096).ToArray(), memory.AsSpan(100 * 512, 4096).ToArray());
        Assert.Equal(8 * 512, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpWrite, 0, 8, UblkConstants.IoFlagFua), buffer));
        Assert.Equal(1, source.Flushes);
        Assert.Equal(0, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpFlush, 0, 0), buffer));
        Assert.Equal(2, source.Flushes);
    }

    [Fact]
    public void Discard_and_write_zeroes_read_back_as_zeros_and_nounmap_writes_them()
    {
        var source = Source(writable: true, out var memory);
        var buffer = new byte[UblkDevice.MaxIoBytes];
        Assert.Equal(0, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpDiscard, 8, 8), buffer));
        Assert.Equal(1, source.Trims);
        Assert.All(memory.AsSpan(8 * 512, 4096).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(0, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpWriteZeroes, 64, 1024), buffer));
        Assert.Equal(2, source.Trims);
        // NOUNMAP: the range must stay allocated, so zeros are written rather than trimmed (1 MiB past the buffer size too).
        Assert.Equal(0, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpWriteZeroes, 0, 2048, UblkConstants.IoFlagNoUnmap), buffer));
        Assert.Equal(2, source.Trims);
        Assert.Equal(new byte[Size], memory);
        Assert.Empty(source.Violations);
    }

    [Theory]
    [InlineData(UblkConstants.IoOpWrite)]
    [InlineData(UblkConstants.IoOpDiscard)]
    [InlineData(UblkConstants.IoOpWriteZeroes)]
    public void A_read_only_device_answers_changes_with_erofs_and_leaves_the_source_alone(byte op)
    {
        var source = Source(writable: true, out var memory);
        var buffer = new byte[UblkDevice.MaxIoBytes];
        Assert.Equal(-(int)Errno.EROFS, UblkRequests.Serve(source, readOnly: true, Request(op, 0, 8), buffer));
        Assert.Equal(0, UblkRequests.Serve(source, readOnly: true, Request(UblkConstants.IoOpFlush, 0, 0), buffer));
        Assert.Equal(_original, memory);
        Assert.Equal(0, source.Writes + source.Trims + source.Flushes);
    }

    [Theory]
    [InlineData(UblkConstants.IoOpRead, Size / 512, 1)] // starts at the end
    [InlineData(UblkConstants.IoOpRead, Size / 512 - 1, 2)] // runs past the end
    [InlineData(UblkConstants.IoOpDiscard, ulong.MaxValue / 2, 8)] // a sector number that would overflow bytes
    [InlineData(UblkConstants.IoOpWrite, 0, 2048)] // 1 MiB: more than the tag's 512 KiB buffer
    public void A_descriptor_outside_the_device_or_the_buffer_is_refused_before_the_source_is_touched(byte op, ulong sector, uint sectors)
    {
        var source = Source(writable: true, out var memory);
        Assert.Equal(-(int)Errno.EINVAL, UblkRequests.Serve(source, readOnly: false, Request(op, sector, sectors), new byte[UblkDevice.MaxIoBytes]));
        Assert.Empty(source.Violations);
        Assert.Equal(_original, memory);
    }

    [Fact]
    public void Operations_the_server_does_not_implement_are_answered_with_eopnotsupp()
    {
        var source = Source(writable: true, out _);
        Assert.Equal(-(int)Errno.EOPNOTSUPP, UblkRequests.Serve(source, readOnly: false, Request(UblkConstants.IoOpWriteSame, 0, 8), new byte[4096]));
        Assert.Equal(-(int)Errno.EOPNOTSUPP, UblkRequests.Serve(source, readOnly: false, Request(10, 0, 8), new byte[4096]));
    }

    private GuardedBlockSource Source(bool writable, out byte[] memory)
    {
        memory = (byte[])_original.Clone();
        return new GuardedBlockSource(new MemoryBlockSource(memory, writable));
    }

    private static UblkIoDescriptor Request(byte op, ulong sector, uint sectors, uint flags = 0) =>
        new() { OpFlags = op | flags, StartSector = sector, Sectors = sectors };
}
