using System.Buffers.Binary;
using System.Security.Cryptography;
using TurboOci.Frontends.Nbd;
using TurboOci.Storage;

namespace TurboOci.GuestAgent;

/// <summary>
/// Our NBD server (TurboOci.Frontends) over a 64 MiB RAM block source on a Unix socket, attached by the
/// guest kernel's NBD client (nbd-client) as a block device: mkfs.ext4, mount, copy a payload in,
/// unmount, drop caches, mount read-only and compare the payload's sha256, e2fsck, detach. Then the
/// block source itself must hold the ext4 superblock, and the server must have seen no protocol error.
/// </summary>
public static class NbdExt4Check
{
    private const long DeviceSize = 64L << 20;
    private const string ExportName = "disk";

    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (args.Length != 2)
        {
            report.Fail("nbd-usage", "nbd-ext4 DEVICE PAYLOAD");
            return;
        }

        var (device, payload) = (args[0], args[1]);
        var buffer = new byte[DeviceSize];
        var source = new MemoryBlockSource(buffer, writable: true);
        var socket = Path.Combine(Path.GetTempPath(), $"turbooci-nbd-{Environment.ProcessId}.sock");
        var mountPoint = Directory.CreateTempSubdirectory("turbooci-nbd-mnt-").FullName;
        var server = NbdServer.Start([new NbdExport(ExportName, source)], new NbdServerOptions { UnixSocketPath = socket });
        var attached = false;
        try
        {
            attached = GuestProcess.RunChecked(report, "nbd-attach", "nbd-client", "-unix", socket, device, "-N", ExportName, "-b", "4096");
            if (!attached)
            {
                return;
            }

            var size = GuestProcess.Run("blockdev", "--getsize64", device).Output.Trim();
            report.Check("nbd-size", size == DeviceSize.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{device} is {size} bytes");
            if (!GuestProcess.RunChecked(report, "nbd-mkfs", "mkfs.ext4", "-q", "-F", device)
                || !GuestProcess.RunChecked(report, "nbd-mount-rw", "mount", "-t", "ext4", device, mountPoint))
            {
                return;
            }

            File.Copy(payload, Path.Combine(mountPoint, "payload.bin"));
            GuestProcess.RunChecked(report, "nbd-umount-rw", "umount", mountPoint);
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
            if (!GuestProcess.RunChecked(report, "nbd-mount-ro", "mount", "-t", "ext4", "-o", "ro", device, mountPoint))
            {
                return;
            }

            var expected = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(payload)));
            var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(mountPoint, "payload.bin"))));
            report.Check("nbd-payload", actual == expected, $"sha256 read back {actual}, written {expected}");
            GuestProcess.RunChecked(report, "nbd-umount-ro", "umount", mountPoint);
            GuestProcess.RunChecked(report, "nbd-e2fsck", "e2fsck", "-fn", device);
        }
        finally
        {
            if (attached)
            {
                GuestProcess.RunChecked(report, "nbd-detach", "nbd-client", "-d", device);
            }

            Directory.Delete(mountPoint);
            await server.DisposeAsync();
        }

        // The ext4 superblock starts at byte 1024; its magic 0xEF53 is at offset 56 within it.
        var magic = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(1024 + 56));
        report.Check("nbd-source-has-ext4", magic == 0xEF53, $"superblock magic in the block source 0x{magic:X4}");
        report.Check("nbd-no-protocol-errors", server.ProtocolErrors == 0, $"{server.ProtocolErrors} protocol errors");
    }
}
