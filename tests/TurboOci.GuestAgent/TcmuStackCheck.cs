using TurboOci.Frontends.Tcmu;
using TurboOci.Storage;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>tcmu-stack CONFIG TREE_JSON RAW_SHA256</c>: the stack served through our TCMU handler (target_core_user and
/// tcm_loop) as /dev/sdX, read-only and then read-write over a writable upper (<see cref="FrontendStackScenario"/>);
/// after each detach the disk and every configfs object of the name must be gone.
/// </summary>
public static class TcmuStackCheck
{
    public static Task RunAsync(string[] args, CheckReport report) =>
        FrontendStackScenario.RunAsync("tcmu", args, (source, readOnly) => Attach(source, readOnly ? "turbooci-ro" : "turbooci-rw", readOnly), report);

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

/// <summary>What the TCMU checks ask configfs.</summary>
internal static class TcmuChecks
{
    /// <summary>True while any configfs target object (backstore, or LUN link) carries <paramref name="name"/>.</summary>
    public static bool ConfigFsHas(string name) =>
        Directory.EnumerateDirectories("/sys/kernel/config/target/core", "user_*").Any(hba => Directory.Exists(Path.Combine(hba, name)));
}
