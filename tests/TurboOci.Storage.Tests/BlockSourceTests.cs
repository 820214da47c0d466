using System.Security.Cryptography;

namespace TurboOci.Storage.Tests;

public sealed class BlockSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("turbooci-storage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void FileSourceReadsWhatWasWrittenAndStopsAtTheEnd()
    {
        var path = Path.Combine(_dir, "f");
        var data = RandomNumberGenerator.GetBytes(10_000);
        File.WriteAllBytes(path, data);
        using var source = FileBlockSource.OpenRead(path);
        Assert.Equal(10_000, source.Size);
        var buffer = new byte[4096];
        Assert.Equal(4096, source.ReadAt(100, buffer));
        Assert.Equal(data.AsSpan(100, 4096).ToArray(), buffer);
        Assert.Equal(10_000 - 8000, source.ReadAt(8000, buffer));
        Assert.Equal(0, source.ReadAt(10_000, buffer));
        Assert.Equal(0, source.ReadAt(20_000, buffer));
        Assert.Throws<EndOfStreamException>(() => source.ReadExactlyAt(9000, buffer));
    }

    [Fact]
    public async Task FileSourceReadsConcurrentlyFromOneHandle()
    {
        var path = Path.Combine(_dir, "c");
        var data = RandomNumberGenerator.GetBytes(1 << 20);
        File.WriteAllBytes(path, data);
        using var source = FileBlockSource.OpenRead(path);
        await Parallel.ForAsync(0, 64, async (i, ct) =>
        {
            var random = new Random(i);
            var buffer = new byte[random.Next(1, 70_000)];
            var offset = random.NextInt64(0, data.Length - buffer.Length);
            await source.ReadExactlyAtAsync(offset, buffer, ct);
            Assert.True(buffer.AsSpan().SequenceEqual(data.AsSpan((int)offset, buffer.Length)));
        });
    }

    [Fact]
    public void WritableFileSourceWritesTrimsAndRefusesWritesPastTheEnd()
    {
        var path = Path.Combine(_dir, "w");
        using (var source = FileBlockSource.OpenReadWrite(path, 8192))
        {
            source.WriteAt(4000, [1, 2, 3, 4, 5]);
            source.Trim(4001, 2);
            source.Flush();
            Assert.Throws<ArgumentOutOfRangeException>(() => source.WriteAt(8190, [1, 2, 3]));
        }

        var bytes = File.ReadAllBytes(path);
        Assert.Equal(8192, bytes.Length);
        Assert.Equal(new byte[] { 1, 0, 0, 4, 5 }, bytes.AsSpan(4000, 5).ToArray());
    }

    [Fact]
    public void MemorySourceReadPastTheEndReturnsZero()
    {
        using var source = new MemoryBlockSource(new byte[10]);
        Assert.Equal(0, source.ReadAt(10, new byte[4]));
        Assert.Equal(0, source.ReadAt(1_000_000, new byte[4]));
        Assert.Equal(2, source.ReadAt(8, new byte[4]));
    }

    [Fact]
    public void SliceReadsAWindowAndClampsAtItsEnd()
    {
        var data = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        using var slice = new SliceBlockSource(new MemoryBlockSource(data), 100, 50);
        var buffer = new byte[80];
        Assert.Equal(50, slice.ReadAt(0, buffer));
        Assert.Equal(data.AsSpan(100, 50).ToArray(), buffer.AsSpan(0, 50).ToArray());
        Assert.Equal(10, slice.ReadAt(40, buffer));
        Assert.Equal(140, buffer[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SliceBlockSource(new MemoryBlockSource(data), 200, 57));
    }

    [Fact]
    public void Crc32CMatchesOverlaybdsRawVariant()
    {
        // Castagnoli check value: CRC-32C("123456789") with the standard pre/post inversion is 0xE3069283.
        // overlaybd's raw form has no inversions, so inverting around it must give the same value.
        var raw = Crc32C.Compute(0xFFFFFFFF, "123456789"u8);
        Assert.Equal(0xE3069283u, raw ^ 0xFFFFFFFF);
        // Chaining: one call over a+b equals two calls.
        var a = RandomNumberGenerator.GetBytes(1000);
        Assert.Equal(Crc32C.Compute(7, a), Crc32C.Compute(Crc32C.Compute(7, a.AsSpan(0, 333)), a.AsSpan(333)));
    }

    [Fact]
    public void FormatExceptionNamesFormatFieldAndOffset()
    {
        var e = Assert.Throws<TurboOciFormatException>(() => TurboOciFormatException.Throw("ZFile", "header.magic0", 0, "not a ZFile"));
        Assert.Equal("ZFile: header.magic0 at offset 0: not a ZFile", e.Message);
        Assert.IsAssignableFrom<TurboOciException>(e);
    }
}
