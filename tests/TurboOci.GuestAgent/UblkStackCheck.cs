using System.Buffers.Binary;
using System.Security.Cryptography;
using TurboOci.Frontends.Ublk;
using TurboOci.Storage;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>ublk-stack CONFIG TREE_JSON RAW_SHA256</c>: the stack served through our ublk server (io_uring, two queues)
/// as /dev/ublkbN, read-only and then read-write over a writable upper (<see cref="FrontendStackScenario"/>);
/// after each detach the block and character devices must be gone. Then a writable RAM disk: BLKZEROOUT
/// (write-zeroes) and mkfs.ext4's discard reach the source, ext4's journal commits reach it as flushes, a
/// payload written and read back after remount is intact, e2fsck finds it clean, and the RAM holds the ext4.
/// Last, two devices served at once by one process read their own sources, and a read the source fails
/// reaches the reader as EIO, is counted, and leaves the device serving.
/// </summary>
public static class UblkStackCheck
{
    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (!await FrontendStackScenario.RunAsync("ublk", args, Attach, report))
        {
            return;
        }

        await RamDiskAsync(report);
        await TwoDevicesAndAnIoErrorAsync(report);
    }

    private static async Task TwoDevicesAndAnIoErrorAsync(CheckReport report)
    {
        const int Size = 8 << 20, Bad = 4 << 20, Block = 4096;
        var first = new byte[Size];
        var second = new byte[Size];
        first.AsSpan().Fill(0x11);
        second.AsSpan().Fill(0x22);
        var one = Attach(new MemoryBlockSource(first), readOnly: true);
        await using (one.Attachment)
        {
            var two = Attach(new FailingSource(new MemoryBlockSource(second), Bad, Block), readOnly: true);
            await using (two.Attachment)
            {
                var (oneBlock, twoBlock) = (ReadBlock(one.Path, 0), ReadBlock(two.Path, 0));
                report.Check(
                    "ublk-two-devices",
                    one.Path != two.Path && oneBlock.AsSpan().SequenceEqual(first.AsSpan(0, Block)) && twoBlock.AsSpan().SequenceEqual(second.AsSpan(0, Block)),
                    $"{one.Path} and {two.Path} each read their own source");
                var (exit, output) = GuestProcess.Run("dd", $"if={two.Path}", "of=/dev/null", $"bs={Block}", $"skip={Bad / Block}", "count=1", "iflag=direct");
                report.Check("ublk-io-error", exit != 0 && output.Contains("Input/output error", StringComparison.Ordinal), $"dd of the failing block exited {exit}: {output.Trim()}");
                var (healthy, detail) = two.Health();
                report.Check("ublk-io-error-counted", !healthy, detail);
                report.Check("ublk-after-io-error", ReadBlock(two.Path, Bad + Block).AsSpan().SequenceEqual(second.AsSpan(Bad + Block, Block)), "the next block still reads");
            }
        }
    }

    /// <summary>One block read with O_DIRECT (through dd), so it comes from the device, not the page cache.</summary>
    private static byte[] ReadBlock(string device, long offset)
    {
        var target = Path.Combine(Path.GetTempPath(), $"turbooci-ublk-block-{Environment.ProcessId}");
        var (exit, output) = GuestProcess.Run("dd", $"if={device}", $"of={target}", "bs=4096", $"skip={offset / 4096}", "count=1", "iflag=direct");
        if (exit != 0)
        {
            throw new IOException($"dd of {device} at {offset} exited {exit}: {output.Trim()}");
        }

        var bytes = File.ReadAllBytes(target);
        File.Delete(target);
        return bytes;
    }

    private static async Task RamDiskAsync(CheckReport report)
    {
        const int Size = 64 << 20, Marked = 2 << 20, Zeroed = 1 << 20;
        var memory = new byte[Size];
        memory.AsSpan(0, Marked).Fill(0xAB);
        var source = new RecordingSource(new MemoryBlockSource(memory, writable: true));
        var payload = RandomNumberGenerator.GetBytes(2_000_000);
        var mountPoint = Directory.CreateTempSubdirectory("turbooci-ublk-ram-").FullName;
        var device = Attach(source, readOnly: false);
        await using (device.Attachment)
        {
            GuestProcess.RunChecked(report, "ublk-ram-blkzeroout", "blkdiscard", "-z", "-o", "0", "-l", Zeroed.ToString(System.Globalization.CultureInfo.InvariantCulture), device.Path);
            report.Check(
                "ublk-ram-write-zeroes",
                !memory.AsSpan(0, Zeroed).ContainsAnyExcept((byte)0) && !memory.AsSpan(Zeroed, Marked - Zeroed).ContainsAnyExcept((byte)0xAB),
                "the first MiB of the RAM reads zeros, the second still holds its marker");
            var trimsBefore = source.Trims;
            GuestProcess.RunChecked(report, "ublk-ram-mkfs", "mkfs.ext4", "-q", "-F", "-E", "discard", device.Path);
            report.Check("ublk-ram-discard", source.Trims > trimsBefore, $"{source.Trims - trimsBefore} discards reached the source during mkfs");
            if (!GuestProcess.RunChecked(report, "ublk-ram-mount", "mount", "-t", "ext4", device.Path, mountPoint))
            {
                return;
            }

            var flushesBefore = source.Flushes;
            await File.WriteAllBytesAsync(Path.Combine(mountPoint, "payload.bin"), payload);
            GuestProcess.RunChecked(report, "ublk-ram-sync", "sync");
            report.Check("ublk-ram-flush", source.Flushes > flushesBefore, $"{source.Flushes - flushesBefore} flushes reached the source for the journal commit");
            GuestProcess.RunChecked(report, "ublk-ram-umount", "umount", mountPoint);
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
            if (GuestProcess.RunChecked(report, "ublk-ram-remount", "mount", "-t", "ext4", "-o", "ro", device.Path, mountPoint))
            {
                var readBack = await File.ReadAllBytesAsync(Path.Combine(mountPoint, "payload.bin"));
                report.Check("ublk-ram-payload", readBack.AsSpan().SequenceEqual(payload), $"{readBack.Length} bytes read back, {payload.Length} written");
                GuestProcess.RunChecked(report, "ublk-ram-umount-again", "umount", mountPoint);
            }

            GuestProcess.RunChecked(report, "ublk-ram-e2fsck", "e2fsck", "-fn", device.Path);
        }

        Directory.Delete(mountPoint);
        // The ext4 superblock starts at byte 1024; its magic 0xEF53 is at offset 56 within it.
        var magic = BinaryPrimitives.ReadUInt16LittleEndian(memory.AsSpan(1024 + 56));
        report.Check("ublk-ram-source-has-ext4", magic == 0xEF53, $"superblock magic in the RAM 0x{magic:X4}");
    }

    private static ServedDevice Attach(BlockSource source, bool readOnly)
    {
        var device = UblkDevice.Start(source, new UblkDeviceOptions { ReadOnly = readOnly, Queues = 2, QueueDepth = 32 });
        var (block, character) = (device.DevicePath, $"/dev/ublkc{device.DeviceId}");
        return new ServedDevice(
            block,
            device,
            () => (device.IoErrors == 0, $"{device.IoErrors} I/O errors; last: {device.LastError ?? "none"}"),
            () => (!Path.Exists(block) && !Path.Exists(character), $"{block} and {character} removed"));
    }

    /// <summary>A writable source that counts the flushes and trims the device sends it.</summary>
    private sealed class RecordingSource(BlockSource inner) : BlockSource
    {
        private long _flushes;
        private long _trims;

        public long Flushes => Interlocked.Read(ref _flushes);

        public long Trims => Interlocked.Read(ref _trims);

        public override long Size => inner.Size;

        public override bool CanWrite => true;

        public override int ReadAt(long offset, Span<byte> destination) => inner.ReadAt(offset, destination);

        public override void WriteAt(long offset, ReadOnlySpan<byte> source) => inner.WriteAt(offset, source);

        public override void Flush()
        {
            Interlocked.Increment(ref _flushes);
            inner.Flush();
        }

        public override void Trim(long offset, long length)
        {
            Interlocked.Increment(ref _trims);
            inner.Trim(offset, length);
        }
    }

    /// <summary>A read-only source whose reads of one range fail, as a lost backing file or a bad blob would.</summary>
    private sealed class FailingSource(BlockSource inner, long badOffset, int badLength) : BlockSource
    {
        public override long Size => inner.Size;

        public override int ReadAt(long offset, Span<byte> destination) =>
            offset < badOffset + badLength && badOffset < offset + destination.Length
                ? throw new IOException($"injected read failure at {badOffset}")
                : inner.ReadAt(offset, destination);
    }
}
