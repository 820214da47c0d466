namespace TurboOci.GuestAgent;

/// <summary>
/// Creates a TCMU user backstore through configfs, enables it, finds the uio device the kernel creates
/// for it, and tears it down again, checking each step against what the kernel shows in sysfs and /dev.
/// No handler serves the ring and no LUN is linked: linking would block on INQUIRY without a handler.
/// </summary>
public static class TcmuBackstoreCheck
{
    private const string TargetCore = "/sys/kernel/config/target/core";
    private const long DeviceSize = 64L << 20;

    public static void Run(CheckReport report)
    {
        if (!report.Check("configfs-target-core", Directory.Exists(TargetCore), $"{TargetCore} exists"))
        {
            return;
        }

        // A free HBA index, so a leftover from another check in the same boot cannot clash.
        var hbaIndex = Enumerable.Range(1, 1000).First(i => !Directory.Exists(Path.Combine(TargetCore, $"user_{i}")));
        var hba = Path.Combine(TargetCore, $"user_{hbaIndex}");
        var device = Path.Combine(hba, "probe");
        const string DeviceConfig = "turbooci/probe";
        var uioName = $"tcm-user/{hbaIndex}/probe/{DeviceConfig}";

        Directory.CreateDirectory(device);
        try
        {
            // Each control write must be its own write(2): the kernel parses one option list per write.
            File.WriteAllText(Path.Combine(device, "control"), $"dev_config={DeviceConfig}");
            File.WriteAllText(Path.Combine(device, "control"), $"dev_size={DeviceSize}");
            File.WriteAllText(Path.Combine(device, "enable"), "1");
            var enabled = File.ReadAllText(Path.Combine(device, "enable")).Trim();
            report.Check("tcmu-enable", enabled == "1", $"enable reads {enabled}");

            var uio = FindUio(uioName);
            if (report.Check("tcmu-uio-appears", uio is not null, uio is null ? $"no /sys/class/uio/*/name is {uioName}" : $"{uio} named {uioName}"))
            {
                var devicePath = $"/dev/{uio}";
                var numbers = File.ReadAllText($"/sys/class/uio/{uio}/dev").Trim();
                // Opening the node reaches the uio driver (a handler would mmap it next); closing releases it.
                using (File.OpenHandle(devicePath, FileMode.Open, FileAccess.ReadWrite))
                {
                    report.Pass("tcmu-uio-open", $"{devicePath} (device {numbers}) opened read-write");
                }

                var mapSize = Convert.ToInt64(File.ReadAllText($"/sys/class/uio/{uio}/maps/map0/size").Trim(), 16);
                report.Check("tcmu-uio-map", mapSize > DeviceSize / 64, $"map0 size {mapSize:#,0} bytes");
                var info = File.ReadAllText(Path.Combine(device, "info"));
                report.Check(
                    "tcmu-info",
                    info.Contains($"Config: {DeviceConfig}", StringComparison.Ordinal) && info.Contains($"Size: {DeviceSize}", StringComparison.Ordinal),
                    info);
            }
        }
        finally
        {
            Directory.Delete(device);
            Directory.Delete(hba);
        }

        report.Check("tcmu-teardown", !Directory.Exists(hba) && FindUio(uioName) is null, $"{hba} removed and its uio device gone");
    }

    private static string? FindUio(string name)
    {
        if (!Directory.Exists("/sys/class/uio"))
        {
            return null;
        }

        return Directory.EnumerateDirectories("/sys/class/uio")
            .Where(dir => File.ReadAllText(Path.Combine(dir, "name")).Trim() == name)
            .Select(Path.GetFileName)
            .FirstOrDefault();
    }
}
