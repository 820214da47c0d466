using System.Security.Cryptography;
using TurboOci.Frontends.Tcmu;
using TurboOci.Images;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>tcmu-stack CONFIG TREE_JSON RAW_SHA256</c>: the stack served through our TCMU handler (target_core_user and
/// tcm_loop) as /dev/sdX, read-only and then read-write over a writable upper (<see cref="FrontendStackScenario"/>);
/// after each detach the disk and every configfs object of the name must be gone.
/// </summary>
public static class TcmuStackCheck
{
    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (args.Length != 3)
        {
            report.Fail("tcmu-usage", "tcmu-stack CONFIG TREE_JSON RAW_SHA256");
            return;
        }

        var (config, expected, rawSha256) = (ImageConfig.Load(args[0]), FileTreeJson.Load(args[1]), args[2]);
        await FrontendStackScenario.ReadOnlyAsync("tcmu", config, expected, rawSha256, source => Attach(source, "turbooci-ro", readOnly: true), report);
        await FrontendStackScenario.ReadWriteAsync("tcmu", config, expected, source => Attach(source, "turbooci-rw", readOnly: false), report);
    }

    private static ServedDevice Attach(BlockSource source, string name, bool readOnly)
    {
        var device = TcmuDevice.Attach(source, new TcmuDeviceOptions { Name = name, ReadOnly = readOnly, Log = Console.Error.WriteLine });
        var path = device.DevicePath;
        return new ServedDevice(
            path,
            device,
            () => (device.MediumErrors == 0 && device.Fault is null,
                $"{device.Completed} commands answered, {device.CheckConditions} with CHECK CONDITION, {device.MediumErrors} medium errors, fault: {device.Fault?.Message ?? "none"}"),
            () => (!Path.Exists(path) && !TcmuChecks.ConfigFsHas(name), $"{path} gone and no configfs backstore named {name} left"));
    }
}

/// <summary>Helpers the TCMU checks share.</summary>
internal static class TcmuChecks
{
    public static string Sha256OfFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (int read; (read = stream.Read(buffer)) > 0;)
        {
            hash.AppendData(buffer, 0, read);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static string? Sha256Of(FileTree tree, string path) => tree.Entries.TryGetValue(path, out var entry) ? entry.Sha256 : null;

    /// <summary>True while any configfs target object (backstore, or LUN link) carries <paramref name="name"/>.</summary>
    public static bool ConfigFsHas(string name) =>
        Directory.EnumerateDirectories("/sys/kernel/config/target/core", "user_*").Any(hba => Directory.Exists(Path.Combine(hba, name)));
}
