using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Ublk;

/// <summary>How a <see cref="UblkDevice"/> is exposed.</summary>
public sealed record UblkDeviceOptions
{
    /// <summary>Refuse writes (also forced when the source cannot write): the kernel marks the disk read-only.</summary>
    public bool ReadOnly { get; init; } = true;

    /// <summary>Hardware queues, one serving thread each (the kernel caps them at the CPU count).</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Requests in flight per queue (1 to 4096), each with its own 512 KiB buffer.</summary>
    public int QueueDepth { get; init; } = 64;
}

/// <summary>
/// A <see cref="BlockSource"/> served as a Linux ublk block device, /dev/ublkbN (module ublk_drv; Linux 6.3 or
/// later, for the ioctl-encoded commands we send): ADD_DEV and SET_PARAMS on /dev/ublk-control, one thread per
/// queue fetching requests through io_uring from /dev/ublkcN, then START_DEV. Reads, writes, flushes (FUA too), discards and write-zeroes
/// go to the source; a read-only device answers anything that would change it with EROFS.
/// </summary>
public sealed class UblkDevice : IAsyncDisposable
{
    /// <summary>The largest request, and so each tag's buffer: ublksrv's default.</summary>
    public const int MaxIoBytes = 512 << 10;

    private const int SectorSize = 512;
    private static readonly TimeSpan s_setupTimeout = TimeSpan.FromSeconds(30);

    private readonly BlockSource _source;
    private readonly bool _readOnly;
    private readonly UblkControl _control;
    private readonly List<UblkQueue> _queues = [];
    private readonly Lock _errorLock = new();
    private SafeFileHandle? _characterDevice;
    private uint? _deviceId;
    private bool _started;
    private long _ioErrors;
    private string? _lastError;
    private int _disposed;

    private UblkDevice(BlockSource source, bool readOnly, UblkControl control)
    {
        _source = source;
        _readOnly = readOnly;
        _control = control;
    }

    /// <summary>/dev/ublkbN.</summary>
    public string DevicePath => UblkControl.BlockDevicePath(DeviceId);

    /// <summary>The device number N the kernel chose.</summary>
    public uint DeviceId => _deviceId ?? throw new InvalidOperationException("the device was not added");

    /// <summary>Whether the kernel was told the disk is read-only.</summary>
    public bool IsReadOnly => _readOnly;

    /// <summary>Requests that failed in the source (answered with EIO) or commands the kernel refused.</summary>
    public long IoErrors => Interlocked.Read(ref _ioErrors);

    /// <summary>The last such failure, for diagnostics.</summary>
    public string? LastError
    {
        get
        {
            lock (_errorLock)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Adds, configures and starts the device; returns once /dev/ublkbN exists.</summary>
    public static UblkDevice Start(BlockSource source, UblkDeviceOptions options) => Start(source, options, UblkControl.ControlPath);

    /// <summary><see cref="Start(BlockSource, UblkDeviceOptions)"/> through another control device path (tests).</summary>
    internal static UblkDevice Start(BlockSource source, UblkDeviceOptions options, string controlPath)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Queues, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Queues, ushort.MaxValue);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.QueueDepth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.QueueDepth, UblkConstants.MaxQueueDepth);
        if (source.Size <= 0 || source.Size % SectorSize != 0)
        {
            throw new ArgumentException($"a ublk device needs a size that is a positive multiple of {SectorSize} bytes, not {source.Size}", nameof(source));
        }

        var device = new UblkDevice(source, options.ReadOnly || !source.CanWrite, UblkControl.Open(controlPath));
        try
        {
            device.Setup(options);
            return device;
        }
        catch
        {
            device.Shutdown();
            throw;
        }
    }

    public ValueTask DisposeAsync() => Interlocked.Exchange(ref _disposed, 1) == 0 ? new ValueTask(Task.Run(Shutdown)) : ValueTask.CompletedTask;

    private void Setup(UblkDeviceOptions options)
    {
        var info = _control.AddDevice(new UblkDeviceInfo
        {
            HardwareQueues = (ushort)options.Queues,
            QueueDepth = (ushort)options.QueueDepth,
            MaxIoBufferBytes = MaxIoBytes,
            DeviceId = UblkControl.AnyDevice,
            Flags = UblkConstants.FlagCommandIoctlEncode,
        });
        _deviceId = info.DeviceId;
        // The kernel may lower the queue count (to the CPU count) and round the buffer size to pages; anything
        // else would make our buffers or threads disagree with its descriptors.
        if (info.HardwareQueues is 0 || info.HardwareQueues > options.Queues || info.QueueDepth != options.QueueDepth
            || info.MaxIoBufferBytes is 0 or > MaxIoBytes || info.MaxIoBufferBytes % 512 != 0)
        {
            throw new IOException($"ublk ADD_DEV answered {info.HardwareQueues} queues of {info.QueueDepth} with {info.MaxIoBufferBytes}-byte buffers for {options.Queues} of {options.QueueDepth} with {MaxIoBytes}");
        }

        _control.SetParameters(info.DeviceId, Parameters(info.MaxIoBufferBytes));
        _characterDevice = OpenWhenPresent(UblkControl.CharacterDevicePath(info.DeviceId));
        for (var queue = 0; queue < info.HardwareQueues; queue++)
        {
            _queues.Add(UblkQueue.Start(_characterDevice, (ushort)queue, info.QueueDepth, (int)info.MaxIoBufferBytes, _source, _readOnly, ReportError));
        }

        foreach (var queue in _queues)
        {
            queue.WaitFetched(s_setupTimeout);
        }

        _control.StartDevice(info.DeviceId, Environment.ProcessId);
        _started = true;
        WaitUntil(() => File.Exists(DevicePath), $"{DevicePath} did not appear");
    }

    private UblkParameters Parameters(uint maxIoBytes)
    {
        var parameters = new UblkParameters
        {
            Types = UblkConstants.ParameterTypeBasic,
            Basic = new UblkBasicParameters
            {
                // A write-back cache on writable devices makes the kernel send FLUSH and FUA, which the source honours.
                Attributes = _readOnly ? UblkConstants.AttributeReadOnly : UblkConstants.AttributeVolatileCache | UblkConstants.AttributeFua,
                LogicalBlockShift = 9,
                PhysicalBlockShift = 12,
                IoOptimalShift = 12,
                IoMinimumShift = 9,
                MaxSectors = maxIoBytes / SectorSize,
                DeviceSectors = (ulong)(_source.Size / SectorSize),
            },
        };
        if (!_readOnly)
        {
            parameters.Types |= UblkConstants.ParameterTypeDiscard;
            parameters.Discard = new UblkDiscardParameters
            {
                DiscardGranularity = 4096,
                MaxDiscardSectors = uint.MaxValue / SectorSize,
                MaxWriteZeroesSectors = uint.MaxValue / SectorSize,
                MaxDiscardSegments = 1, // the driver supports single-range discards only
            };
        }

        return parameters;
    }

    /// <summary>STOP_DEV (aborting the queues' commands), then the queues, the character device and DEL_DEV; flushes a writable source.</summary>
    private void Shutdown()
    {
        var errors = new List<Exception>();
        if (_deviceId is { } id)
        {
            Try(errors, () => _control.StopDevice(id));
        }

        foreach (var queue in _queues)
        {
            if (!queue.Join(s_setupTimeout))
            {
                errors.Add(new TimeoutException($"a ublk queue thread of {DevicePath} did not end after STOP_DEV"));
            }

            queue.Dispose();
        }

        // DEL_DEV waits until nobody holds /dev/ublkcN open.
        _characterDevice?.Dispose();
        if (_deviceId is { } added)
        {
            Try(errors, () => _control.DeleteDevice(added));
        }

        _control.Dispose();
        if (!_readOnly)
        {
            Try(errors, _source.Flush);
        }

        if (errors.Count > 0)
        {
            throw new AggregateException($"stopping ublk device {(_started ? DevicePath : "(not started)")} failed", errors);
        }
    }

    private void ReportError(string message)
    {
        Interlocked.Increment(ref _ioErrors);
        lock (_errorLock)
        {
            _lastError = message;
        }
    }

    private static void Try(List<Exception> errors, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            errors.Add(e);
        }
    }

    /// <summary>Opens a device node that devtmpfs may still be creating.</summary>
    private static SafeFileHandle OpenWhenPresent(string path)
    {
        WaitUntil(() => File.Exists(path), $"{path} did not appear");
        return Posix.Open(path, OpenFlags.ReadWrite);
    }

    private static void WaitUntil(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow + s_setupTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{failure} within {s_setupTimeout.TotalSeconds} s");
            }

            Thread.Sleep(10);
        }
    }
}
