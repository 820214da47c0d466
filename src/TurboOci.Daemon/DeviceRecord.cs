using System.Text.Json.Serialization;

namespace TurboOci.Daemon;

/// <summary>Which kernel-facing protocol serves a device.</summary>
public enum DeviceFrontend
{
    /// <summary>A file in a FUSE mount (our own /dev/fuse server) with a loop device on it: works wherever FUSE and loop do.</summary>
    [JsonStringEnumMemberName("fuse")]
    Fuse,

    /// <summary>An NBD export on a Unix socket of the daemon; the device is an <c>nbd+unix://</c> URI.</summary>
    [JsonStringEnumMemberName("nbd")]
    Nbd,

    /// <summary>A SCSI disk through target_core_user and tcm_loop, as overlaybd serves its devices.</summary>
    [JsonStringEnumMemberName("tcmu")]
    Tcmu,

    /// <summary>A ublk block device (io_uring).</summary>
    [JsonStringEnumMemberName("ublk")]
    Ublk,
}

/// <summary>The names the command line and the control protocol use for frontends.</summary>
public static class DeviceFrontendNames
{
    public static string Name(this DeviceFrontend frontend) => frontend.ToString().ToLowerInvariant();
}

/// <summary>
/// One device of the daemon: what to serve and how (kept in the state file, so a restarted daemon serves
/// it again), and, while attached, the device path or URI clients use.
/// </summary>
public sealed record DeviceRecord
{
    /// <summary>Unique within a daemon: the export name for NBD, the folder of a FUSE mount.</summary>
    public string Name { get; set; } = "";

    /// <summary>The config.v1.json of the layer stack (absolute), or empty when <see cref="Image"/> is served.</summary>
    public string Config { get; set; } = "";

    /// <summary>A raw disk image file served as it is (absolute), or empty.</summary>
    public string Image { get; set; } = "";

    public DeviceFrontend Frontend { get; set; }

    /// <summary>Writes reach the stack's upper layer (or the raw image); read-only otherwise.</summary>
    public bool ReadWrite { get; set; }

    /// <summary>Where the daemon mounted the device's ext4 (<c>turbooci mount</c>), or empty.</summary>
    public string MountPoint { get; set; } = "";

    /// <summary>The block device path, or the NBD URI; empty in the state file until attached.</summary>
    public string Device { get; set; } = "";

    /// <summary>What is served, for messages: the config or image path.</summary>
    [JsonIgnore]
    public string Source => Config.Length > 0 ? Config : Image;
}
