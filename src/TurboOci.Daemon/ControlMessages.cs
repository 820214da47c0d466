using System.Text.Json.Serialization;

namespace TurboOci.Daemon;

/// <summary>The requests the control socket takes, one JSON object per line.</summary>
public static class ControlOps
{
    /// <summary>Serve a stack (or raw image); with <see cref="ControlRequest.MountPoint"/>, also mount its ext4 there.</summary>
    public const string Attach = "attach";

    /// <summary>Stop serving the device named by <see cref="ControlRequest.Target"/> (name, device path, URI or mount point).</summary>
    public const string Detach = "detach";

    /// <summary>Stop serving every device and forget them.</summary>
    public const string DetachAll = "detach-all";

    /// <summary>The attached devices.</summary>
    public const string List = "list";

    /// <summary>Unmount the ext4 the daemon mounted at <see cref="ControlRequest.Target"/>, then detach its device.</summary>
    public const string Unmount = "umount";
}

/// <summary>How a failed request failed, so that the client exits with the matching code.</summary>
public enum ControlErrorKind
{
    [JsonStringEnumMemberName("failure")]
    Failure,

    /// <summary>The request itself is wrong (unknown device, bad option): usage.</summary>
    [JsonStringEnumMemberName("usage")]
    Usage,

    /// <summary>A config, layer or index is corrupt.</summary>
    [JsonStringEnumMemberName("bad-data")]
    BadData,

    /// <summary>A file is missing, a mount is busy, a system call failed.</summary>
    [JsonStringEnumMemberName("io")]
    IoError,
}

// The messages have setters, not init: the JSON source generator sets init-only properties in one object
// initializer, where a key missing from the line would overwrite the default with null.

/// <summary>One request line.</summary>
public sealed record ControlRequest
{
    public string Op { get; set; } = "";

    public string Config { get; set; } = "";

    public string Image { get; set; } = "";

    public DeviceFrontend Frontend { get; set; }

    public bool ReadWrite { get; set; }

    /// <summary>attach: the device name; empty picks one from the config's folder.</summary>
    public string Name { get; set; } = "";

    /// <summary>attach: mount the device's ext4 here (read-only unless <see cref="ReadWrite"/>).</summary>
    public string MountPoint { get; set; } = "";

    /// <summary>detach, umount: which device.</summary>
    public string Target { get; set; } = "";
}

/// <summary>One response line: the devices concerned, or the error.</summary>
public sealed record ControlResponse
{
    public bool Ok { get; set; }

    public string Error { get; set; } = "";

    public ControlErrorKind ErrorKind { get; set; }

    public IReadOnlyList<DeviceRecord> Devices { get; set; } = [];

    public static ControlResponse Success(params IReadOnlyList<DeviceRecord> devices) => new() { Ok = true, Devices = devices };

    public static ControlResponse Failed(ControlErrorKind kind, string error) => new() { Ok = false, ErrorKind = kind, Error = error };
}

/// <summary>The state file: the devices a restarted daemon attaches again.</summary>
public sealed record DaemonState
{
    public IReadOnlyList<DeviceRecord> Devices { get; set; } = [];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(DaemonState))]
internal sealed partial class ControlJson : JsonSerializerContext;
