using System.Globalization;
using System.Security.Cryptography;
using TurboOci.Formats.Lsmt;
using TurboOci.Images;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.GuestAgent;

/// <summary>
/// A block device a frontend serves a stack through: its path, whether the frontend saw errors, and the
/// detach (disposing <see cref="Attachment"/>), after which <see cref="Detached"/> says whether it is gone.
/// </summary>
internal sealed record ServedDevice(string Path, IAsyncDisposable Attachment, Func<(bool Healthy, string Detail)> Health, Func<(bool Gone, string Detail)> Detached);

/// <summary>
/// What the guest kernel must make of a TurboOCI stack (built on the host by GuestStack) served through any
/// block frontend, with checks named <c>PREFIX-ro-*</c> and <c>PREFIX-rw-*</c>: the read-only disk's size,
/// write protection, sha256 (the host's raw export) and ext4 tree (the host's mount of that export); a
/// read-write stack over a writable upper LSMT that takes a create, an overwrite, a delete, fstrim and sync,
/// passes e2fsck, and after detach and re-attach of a new stack over the same upper holds exactly those changes.
/// </summary>
internal static class FrontendStackScenario
{
    private const string CreatedName = "frontend-created.bin";

    /// <summary>
    /// The check <c>PREFIX-stack CONFIG TREE_JSON RAW_SHA256</c> of a frontend that serves both ways:
    /// <see cref="ReadOnlyAsync"/>, then <see cref="ReadWriteAsync"/>, each device from <paramref name="attach"/>(source, readOnly).
    /// Returns false (after a failed <c>PREFIX-usage</c> check) when the arguments are not those three.
    /// </summary>
    public static async Task<bool> RunAsync(string prefix, string[] args, Func<BlockSource, bool, ServedDevice> attach, CheckReport report)
    {
        if (args.Length != 3)
        {
            report.Fail($"{prefix}-usage", $"{prefix}-stack CONFIG TREE_JSON RAW_SHA256");
            return false;
        }

        var (config, expected, rawSha256) = (ImageConfig.Load(args[0]), FileTreeJson.Load(args[1]), args[2]);
        await ReadOnlyAsync(prefix, config, expected, rawSha256, source => attach(source, true), report);
        await ReadWriteAsync(prefix, config, expected, source => attach(source, false), report);
        return true;
    }

    public static async Task ReadOnlyAsync(string prefix, ImageConfig config, FileTree expected, string rawSha256, Func<BlockSource, ServedDevice> attach, CheckReport report)
    {
        using var stack = ImageStack.Open(config);
        var device = attach(stack);
        var block = $"/sys/block/{Path.GetFileName(device.Path)}";
        await using (device.Attachment)
        {
            var size = long.Parse(File.ReadAllText(Path.Combine(block, "size")).Trim(), CultureInfo.InvariantCulture) * 512;
            report.Check($"{prefix}-ro-size", size == stack.Size, $"{device.Path} is {size} bytes, the stack {stack.Size}");
            var readOnly = File.ReadAllText(Path.Combine(block, "ro")).Trim();
            report.Check($"{prefix}-ro-write-protect", readOnly == "1", $"{block}/ro reads {readOnly}");
            var (ddExit, ddOutput) = GuestProcess.Run("dd", "if=/dev/zero", $"of={device.Path}", "bs=4096", "count=1", "oflag=direct");
            report.Check($"{prefix}-ro-write-refused", ddExit != 0, $"dd onto {device.Path} exited {ddExit}: {ddOutput.Trim()}");

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var sha = FileHashes.Sha256OfFile(device.Path);
            report.Check($"{prefix}-ro-sha256", sha == rawSha256, $"{device.Path} sha256 {sha} (read in {clock.Elapsed.TotalSeconds:F1} s), the host's raw export {rawSha256}");

            var mountPoint = Directory.CreateTempSubdirectory($"turbooci-{prefix}-ro-").FullName;
            if (GuestProcess.RunChecked(report, $"{prefix}-ro-mount", "mount", "-t", "ext4", "-o", "ro", device.Path, mountPoint))
            {
                var differences = FileTree.Compare(expected, FileTree.FromDirectory(mountPoint, "lost+found"));
                report.Check($"{prefix}-ro-tree", differences.Count == 0, $"{expected.Entries.Count} entries; differences: {string.Join(" | ", differences.Take(20))}");
                GuestProcess.RunChecked(report, $"{prefix}-ro-umount", "umount", mountPoint);
            }

            Directory.Delete(mountPoint);
            var (healthy, detail) = device.Health();
            report.Check($"{prefix}-ro-no-errors", healthy, detail);
        }

        var (gone, goneDetail) = device.Detached();
        report.Check($"{prefix}-ro-detach", gone, goneDetail);
    }

    public static async Task ReadWriteAsync(string prefix, ImageConfig lowersOnly, FileTree expected, Func<BlockSource, ServedDevice> attach, CheckReport report)
    {
        var work = Directory.CreateTempSubdirectory($"turbooci-{prefix}-rw-").FullName;
        var config = lowersOnly with { Upper = new UpperLayer { Data = Path.Combine(work, "upper.data"), Index = Path.Combine(work, "upper.index") } };
        using (var lowers = ImageStack.OpenLowers(config))
        using (WritableLayer.Create(config.Upper.Data, config.Upper.Index, 0, lower: lowers))
        {
        }

        var created = RandomNumberGenerator.GetBytes(1_500_000);
        var overwritten = expected.Entries.Where(e => e.Value.Kind == FileTreeKind.File && e.Value.Size > 10_000).Select(e => e.Key).First();
        var deleted = expected.Entries.Where(e => e.Value.Kind == FileTreeKind.File && e.Key != overwritten).Select(e => e.Key).First();
        var overwrite = RandomNumberGenerator.GetBytes(300_000);
        var mountPoint = Path.Combine(work, "mnt");
        Directory.CreateDirectory(mountPoint);

        using (var stack = ImageStack.Open(config))
        {
            var device = attach(stack);
            await using (device.Attachment)
            {
                var readOnly = File.ReadAllText($"/sys/block/{Path.GetFileName(device.Path)}/ro").Trim();
                report.Check($"{prefix}-rw-writable", readOnly == "0", $"{device.Path} ro reads {readOnly}");
                if (!GuestProcess.RunChecked(report, $"{prefix}-rw-mount", "mount", "-t", "ext4", device.Path, mountPoint))
                {
                    return;
                }

                await File.WriteAllBytesAsync(Path.Combine(mountPoint, CreatedName), created);
                await File.WriteAllBytesAsync(Path.Combine(mountPoint, overwritten), overwrite);
                File.Delete(Path.Combine(mountPoint, deleted));
                GuestProcess.RunChecked(report, $"{prefix}-rw-sync", "sync");
                // fstrim sends DISCARD for the free space (the deleted file's blocks among it).
                GuestProcess.RunChecked(report, $"{prefix}-rw-fstrim", "fstrim", "-v", mountPoint);
                GuestProcess.RunChecked(report, $"{prefix}-rw-umount", "umount", mountPoint);
                GuestProcess.RunChecked(report, $"{prefix}-rw-e2fsck", "e2fsck", "-fn", device.Path);
                var (healthy, detail) = device.Health();
                report.Check($"{prefix}-rw-no-errors", healthy, detail);
            }
        }

        var upperBytes = new FileInfo(config.Upper.Data).Length;
        report.Check($"{prefix}-rw-upper-written", upperBytes > created.Length, $"the upper's data file holds {upperBytes} bytes");

        // A new stack and a new device over the same upper: the changes, and nothing else, must be there.
        using (var stack = ImageStack.Open(config))
        {
            var device = attach(stack);
            await using (device.Attachment)
            {
                if (!GuestProcess.RunChecked(report, $"{prefix}-rw-remount", "mount", "-t", "ext4", "-o", "ro", device.Path, mountPoint))
                {
                    return;
                }

                var actual = FileTree.FromDirectory(mountPoint, "lost+found");
                report.Check($"{prefix}-rw-created", Sha256Of(actual, CreatedName) == Convert.ToHexStringLower(SHA256.HashData(created)), $"{CreatedName} read back");
                report.Check($"{prefix}-rw-overwritten", Sha256Of(actual, overwritten) == Convert.ToHexStringLower(SHA256.HashData(overwrite)), $"{overwritten} holds the new content");
                report.Check($"{prefix}-rw-deleted", !actual.Entries.ContainsKey(deleted), $"{deleted} is gone");
                var changed = new[] { CreatedName, overwritten, deleted };
                var rest = FileTree.Compare(
                    new FileTree(expected.Entries.Where(e => !changed.Contains(e.Key)).ToDictionary()),
                    new FileTree(actual.Entries.Where(e => !changed.Contains(e.Key)).ToDictionary()));
                report.Check($"{prefix}-rw-rest-unchanged", rest.Count == 0, $"differences: {string.Join(" | ", rest.Take(20))}");
                GuestProcess.RunChecked(report, $"{prefix}-rw-umount-again", "umount", mountPoint);
            }

            var (gone, goneDetail) = device.Detached();
            report.Check($"{prefix}-rw-detach", gone, goneDetail);
        }

        Directory.Delete(work, recursive: true);
    }

    private static string? Sha256Of(FileTree tree, string path) => tree.Entries.TryGetValue(path, out var entry) ? entry.Sha256 : null;
}
