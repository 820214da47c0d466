using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>
/// The ublk control device, /dev/ublk-control: device management commands sent as io_uring URING_CMDs
/// (which need 128-byte submission entries: struct ublksrv_ctrl_cmd is 32 bytes). Each call waits for
/// its completion; calls are serialized, so one instance may be shared, but START_DEV blocks until the
/// device's queues serve the partition scan, so a device usually owns its own instance.
/// </summary>
public sealed unsafe class UblkControl : IDisposable
{
    public const string ControlPath = "/dev/ublk-control";

    /// <summary>Asks ADD_DEV for any free device number.</summary>
    public const uint AnyDevice = uint.MaxValue;

    private readonly SafeFileHandle _control;
    private readonly IoUring _ring;
    private readonly Lock _lock = new();

    private UblkControl(SafeFileHandle control, IoUring ring)
    {
        _control = control;
        _ring = ring;
    }

    /// <summary>The character device a server opens to serve device <paramref name="deviceId"/>'s queues.</summary>
    public static string CharacterDevicePath(uint deviceId) => $"/dev/ublkc{deviceId}";

    /// <summary>The block device the kernel creates at START_DEV.</summary>
    public static string BlockDevicePath(uint deviceId) => $"/dev/ublkb{deviceId}";

    /// <summary>Opens the control device (<paramref name="controlPath"/> is for tests); says so plainly when the driver is not loaded.</summary>
    public static UblkControl Open(string controlPath = ControlPath)
    {
        if (!File.Exists(controlPath))
        {
            throw new NotSupportedException($"ublk is not available: {controlPath} does not exist (load the ublk_drv module: Linux 6.3 or later)");
        }

        var control = Posix.Open(controlPath, OpenFlags.ReadWrite);
        try
        {
            return new UblkControl(control, IoUring.Create(4, IoUringConstants.SetupSubmissionEntry128));
        }
        catch
        {
            control.Dispose();
            throw;
        }
    }

    /// <summary>
    /// ADD_DEV: creates a device (its number chosen by the kernel unless <paramref name="info"/> names one) and
    /// its /dev/ublkcN. Returns the kernel's answer: the number, and the queue count, depth, buffer size and
    /// flags as the kernel adjusted them.
    /// </summary>
    public UblkDeviceInfo AddDevice(UblkDeviceInfo info)
    {
        Send(UblkConstants.CommandAddDevice, info.DeviceId, &info, sizeof(UblkDeviceInfo), 0);
        return info;
    }

    /// <summary>SET_PARAMS: the basic (size, block sizes, transfer limit, attributes) and optional discard parameters.</summary>
    public void SetParameters(uint deviceId, UblkParameters parameters)
    {
        parameters.Length = (uint)sizeof(UblkParameters);
        Send(UblkConstants.CommandSetParameters, deviceId, &parameters, sizeof(UblkParameters), 0);
    }

    /// <summary>
    /// START_DEV: waits until every queue has fetched all of its tags, then adds /dev/ublkbN (reading the
    /// partition table through the queues, so they must be served meanwhile).
    /// </summary>
    public void StartDevice(uint deviceId, int serverProcessId) =>
        Send(UblkConstants.CommandStartDevice, deviceId, null, 0, (ulong)serverProcessId);

    /// <summary>STOP_DEV: removes /dev/ublkbN and completes every queue's pending commands with UBLK_IO_RES_ABORT.</summary>
    public void StopDevice(uint deviceId) => Send(UblkConstants.CommandStopDevice, deviceId, null, 0, 0);

    /// <summary>DEL_DEV: deletes the device; waits until /dev/ublkcN is closed by its server.</summary>
    public void DeleteDevice(uint deviceId) => Send(UblkConstants.CommandDeleteDevice, deviceId, null, 0, 0);

    public void Dispose()
    {
        _ring.Dispose();
        _control.Dispose();
    }

    private void Send(uint command, uint deviceId, void* buffer, int length, ulong data0)
    {
        var header = new UblkControlCommand
        {
            DeviceId = deviceId,
            QueueId = ushort.MaxValue, // ADD_DEV insists on -1; the other commands ignore it
            Length = (ushort)length,
            Address = (ulong)buffer,
        };
        header.Data[0] = data0;
        lock (_lock)
        {
            _ring.PrepareCommand(
                (int)_control.DangerousGetHandle(),
                UblkConstants.EncodeControl(command),
                new ReadOnlySpan<byte>(&header, sizeof(UblkControlCommand)),
                command);
            _ring.Submit(waitFor: 1);
            if (!_ring.TryReap(out var completion))
            {
                throw new InvalidOperationException($"ublk control command 0x{command:x2}: io_uring_enter returned without its completion");
            }

            if (completion.Result < 0)
            {
                throw new ErrnoException($"ublk {Name(command)}", $"device {(deviceId == AnyDevice ? "any" : deviceId)}", -completion.Result);
            }
        }
    }

    private static string Name(uint command) => command switch
    {
        UblkConstants.CommandAddDevice => "ADD_DEV",
        UblkConstants.CommandSetParameters => "SET_PARAMS",
        UblkConstants.CommandStartDevice => "START_DEV",
        UblkConstants.CommandStopDevice => "STOP_DEV",
        UblkConstants.CommandDeleteDevice => "DEL_DEV",
        _ => $"command 0x{command:x2}",
    };
}
