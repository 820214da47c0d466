using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TurboOci.Frontends.Fuse;
using TurboOci.Interop.Fuse;
using TurboOci.Storage;
using TurboOci.Testing;
using LoopDevice = TurboOci.Interop.Linux.LoopDevice;

namespace TurboOci.Frontends.Tests.Fuse;

/// <summary>
/// The fast paths of the FUSE-file frontend against the real kernel: 1 MiB requests (max_pages),
/// READ replies written straight from a mapping of the source file, and their edges, each checked byte for byte.
/// </summary>
public sealed class FuseTransferTests
{
    private const int MiB = 1 << 20;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OneMiBReadsAreOneRequestEachAndAReadAcrossTheEndIsShort(bool mappedReads)
    {
        using var temp = new TempDir();
        var bytes = RandomBytes((3 * MiB) + 12345, seed: 11);
        var image = temp.File("raw.img");
        File.WriteAllBytes(image, bytes);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;

        using var source = FileBlockSource.OpenRead(image);
        using var fuse = FuseFileMount.Mount(fuseDir, source, new FuseFileMountOptions { MappedReads = mappedReads });
        var buffer = new AlignedBuffer(MiB);
        using var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.Read);

        // A page-aligned 1 MiB buffer at a 1 MiB offset: the kernel sends exactly one READ (max_pages = 256).
        var before = fuse.FileSystem.RequestCount(FuseOpcode.Read);
        Assert.Equal(MiB, RandomAccess.Read(handle, buffer.Span, MiB));
        Assert.Equal(before + 1, fuse.FileSystem.RequestCount(FuseOpcode.Read));
        Assert.True(buffer.Span.SequenceEqual(bytes.AsSpan(MiB, MiB)));

        // 1 MiB from 1000 bytes before the end, at an odd offset: a short read with the last bytes.
        var nearEnd = bytes.Length - 1000;
        Assert.Equal(1000, RandomAccess.Read(handle, buffer.Span, nearEnd));
        Assert.True(buffer.Span[..1000].SequenceEqual(bytes.AsSpan(nearEnd)));
        Assert.Equal(0, RandomAccess.Read(handle, buffer.Span, bytes.Length));

        // The whole file, read front to back in a stream's chunks.
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), TestImages.Sha256(fuse.FilePath));
        Assert.Equal(mappedReads, fuse.MappedReplies > 0);
        Assert.Null(fuse.WorkerFault);
        Assert.Null(fuse.FileSystem.LastSourceError);
    }

    [Fact]
    public void ALoopDeviceOnAMappedSliceReadsTheSliceBytes()
    {
        using var temp = new TempDir();
        var bytes = RandomBytes(6 * MiB, seed: 12);
        var image = temp.File("raw.img");
        File.WriteAllBytes(image, bytes);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;

        // The slice starts off page alignment, so every mapped payload starts mid-page in the file.
        const int start = 4096 + 17;
        const int length = 4 * MiB + 512;
        using var file = FileBlockSource.OpenRead(image);
        using var slice = new SliceBlockSource(file, start, length);
        using var fuse = FuseFileMount.Mount(fuseDir, slice);
        var loop = LoopDevice.Attach(fuse.FilePath, readOnly: true, directIo: true);
        try
        {
            using var device = File.OpenHandle(loop.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            var buffer = new AlignedBuffer(MiB);
            var served = new byte[length];
            for (var offset = 0; offset < length; offset += MiB)
            {
                var read = RandomAccess.Read(device, buffer.Span, offset);
                Assert.Equal(Math.Min(MiB, length - offset), read);
                buffer.Span[..read].CopyTo(served.AsSpan(offset));
            }

            Assert.True(served.AsSpan().SequenceEqual(bytes.AsSpan(start, length)));
            Assert.True(fuse.MappedReplies > 0);
            Assert.Null(fuse.WorkerFault);
        }
        finally
        {
            loop.Detach();
        }
    }

    [Fact]
    public void ReadsOfMappedPagesTheFileNoLongerHasFailWithEioAndTheRestStillServe()
    {
        using var temp = new TempDir();
        var bytes = RandomBytes(2 * MiB, seed: 13);
        var image = temp.File("raw.img");
        File.WriteAllBytes(image, bytes);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;

        using var source = FileBlockSource.OpenRead(image); // keeps the size it opened with, as the mapping does
        using var fuse = FuseFileMount.Mount(fuseDir, source);
        using (var shrink = File.OpenHandle(image, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            RandomAccess.SetLength(shrink, MiB + 300);
        }

        // The device lost its last bytes: the kernel's copy from the mapping faults, and the reader gets
        // EIO rather than a reply of made-up bytes; the server neither crashes nor stops.
        using var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.Read);
        var buffer = new AlignedBuffer(MiB);
        var mapped = fuse.MappedReplies;
        var failed = Assert.ThrowsAny<IOException>(() => RandomAccess.Read(handle, buffer.Span, MiB));
        Assert.Contains("Input/output error", failed.Message, StringComparison.Ordinal); // EIO
        Assert.Equal(mapped, fuse.MappedReplies);

        // What is still there is still served from the mapping.
        Assert.Equal(MiB, RandomAccess.Read(handle, buffer.Span, 0));
        Assert.True(buffer.Span.SequenceEqual(bytes.AsSpan(0, MiB)));
        Assert.Equal(mapped + 1, fuse.MappedReplies);
        Assert.Null(fuse.WorkerFault);
    }

    [Fact]
    public void OneMiBWritesAreOneRequestEachAndFsyncReachesTheSource()
    {
        using var temp = new TempDir();
        var image = temp.File("raw.img");
        File.WriteAllBytes(image, new byte[(2 * MiB) + 8192]);
        var fuseDir = Directory.CreateDirectory(temp.File("fuse")).FullName;
        var payload = RandomBytes(MiB, seed: 14);

        using var source = FileBlockSource.OpenReadWrite(image);
        using (var fuse = FuseFileMount.Mount(fuseDir, source))
        using (var handle = File.OpenHandle(fuse.FilePath, FileMode.Open, FileAccess.ReadWrite))
        {
            var buffer = new AlignedBuffer(MiB);
            payload.CopyTo(buffer.Span);
            var writes = fuse.FileSystem.RequestCount(FuseOpcode.Write);
            RandomAccess.Write(handle, buffer.Span, MiB);
            Assert.Equal(writes + 1, fuse.FileSystem.RequestCount(FuseOpcode.Write)); // max_write = 1 MiB

            // A write crossing the end is cut short; .NET reports the missing part as an error.
            Assert.ThrowsAny<IOException>(() => RandomAccess.Write(handle, buffer.Span[..16384], (2 * MiB) + 4096));

            var fsyncs = fuse.FileSystem.RequestCount(FuseOpcode.Fsync);
            RandomAccess.FlushToDisk(handle);
            Assert.Equal(fsyncs + 1, fuse.FileSystem.RequestCount(FuseOpcode.Fsync));

            // Read back through FUSE (mapped from the file the writes went to).
            buffer.Span.Clear();
            Assert.Equal(MiB, RandomAccess.Read(handle, buffer.Span, MiB));
            Assert.True(buffer.Span.SequenceEqual(payload));
            Assert.Null(fuse.FileSystem.LastSourceError);
        }

        var onDisk = File.ReadAllBytes(image);
        Assert.True(onDisk.AsSpan(MiB, MiB).SequenceEqual(payload));
        Assert.True(onDisk.AsSpan((2 * MiB) + 4096, 4096).SequenceEqual(payload.AsSpan(0, 4096)));
        Assert.True(onDisk.AsSpan(0, MiB).IndexOfAnyExcept((byte)0) < 0);
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A page-aligned buffer: the kernel then maps a 1 MiB transfer onto exactly 256 pages.</summary>
    private sealed class AlignedBuffer
    {
        private const int PageSize = 4096;
        private readonly byte[] _pinned;
        private readonly int _start;
        private readonly int _length;

        public AlignedBuffer(int length)
        {
            _pinned = GC.AllocateUninitializedArray<byte>(length + PageSize, pinned: true);
            _start = (int)((PageSize - (Marshal.UnsafeAddrOfPinnedArrayElement(_pinned, 0) % PageSize)) % PageSize);
            _length = length;
        }

        public Span<byte> Span => _pinned.AsSpan(_start, _length);
    }
}
