using System.Collections.Concurrent;
using System.Diagnostics;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tcmu;

/// <summary>How <see cref="TcmuDevice.Attach"/> exports a block source.</summary>
public sealed record TcmuDeviceOptions
{
    /// <summary>The backstore's configfs name; also what a restarted handler adopts. Letters, digits, '-', '_', '.'.</summary>
    public required string Name { get; init; }

    /// <summary>Refuse writes (DATA PROTECT, write-protect bit in MODE SENSE). A source that cannot write is always read-only.</summary>
    public bool ReadOnly { get; init; } = true;

    /// <summary>The logical block size the disk reports: 512 or 4096.</summary>
    public int BlockSize { get; init; } = 512;

    /// <summary>
    /// The kernel fails a command with an error when the handler has not answered it in this time (attrib/cmd_time_out).
    /// A restarted handler must be back within it for I/O to resume without errors.
    /// </summary>
    public int CommandTimeoutSeconds { get; init; } = 30;

    /// <summary>How long to wait for the kernel's disk to appear after the LUN is linked.</summary>
    public TimeSpan DeviceTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Where configfs is mounted.</summary>
    public string ConfigFsRoot { get; init; } = "/sys/kernel/config";

    /// <summary>Receives one line per notable event (adoption, command failures).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// A block source served to the kernel through TCMU (target_core_user) and tcm_loop, so it appears as a SCSI disk
/// <c>/dev/sdX</c>. <see cref="Attach"/> creates the configfs objects in order (backstore, enable, uio ring served,
/// then the loopback target, nexus and LUN, whose probe already goes through the ring), or, when the objects of
/// the name exist because an earlier handler process died, adopts them: it blocks the device, reopens the uio
/// device, resets the ring (commands the dead handler held end BUSY and the SCSI layer retries them) and
/// unblocks, so a mounted filesystem continues without an I/O error.
/// </summary>
public sealed class TcmuDevice : IAsyncDisposable
{
    private const int PollMilliseconds = 100;

    private readonly BlockSource _source;
    private readonly TcmuDeviceOptions _options;
    private readonly TcmuConfigFs _configFs;
    private readonly ScsiDisk _disk;
    private readonly ConcurrentDictionary<TcmuCommand, Task> _inFlight = new();
    private readonly CancellationTokenSource _stop = new();
    private TcmuUio? _uio;
    private TcmuRing? _ring;
    private Thread? _loop;
    private int _disposed;
    private long _checkConditions;
    private long _mediumErrors;
    private long _completed;

    private TcmuDevice(BlockSource source, TcmuDeviceOptions options, TcmuConfigFs configFs, ScsiDisk disk)
    {
        _source = source;
        _options = options;
        _configFs = configFs;
        _disk = disk;
    }

    /// <summary>/dev/sdX of the LUN.</summary>
    public string DevicePath { get; private set; } = "";

    /// <summary>True when this handler took over the configfs objects of a dead one.</summary>
    public bool Adopted { get; private set; }

    /// <summary>The uio device serving the ring.</summary>
    public string UioDevice { get; private set; } = "";

    /// <summary>The disk's identity (serial, block size, read-only).</summary>
    public ScsiDiskInfo Info => _disk.Info;

    /// <summary>Commands answered with CHECK CONDITION so far.</summary>
    public long CheckConditions => Interlocked.Read(ref _checkConditions);

    /// <summary>Commands answered with MEDIUM ERROR (the source failed) so far.</summary>
    public long MediumErrors => Interlocked.Read(ref _mediumErrors);

    /// <summary>Commands answered so far.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Why the serving loop stopped early, or null.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>
    /// Serves <paramref name="source"/> as the TCMU disk <see cref="TcmuDeviceOptions.Name"/>, creating its configfs
    /// objects or adopting those a dead handler left; returns once the kernel's /dev/sdX exists. The source is not
    /// owned: the caller disposes it after the device.
    /// </summary>
    public static TcmuDevice Attach(BlockSource source, TcmuDeviceOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var readOnly = options.ReadOnly || !source.CanWrite;
        var info = new ScsiDiskInfo(options.Name, source.Size, options.BlockSize, readOnly);
        var configFs = TcmuConfigFs.For(options.ConfigFsRoot, options.Name);
        var device = new TcmuDevice(source, options, configFs, new ScsiDisk(source, info));
        var existed = configFs.BackstoreExists;
        try
        {
            if (existed)
            {
                device.Adopt();
            }
            else
            {
                device.Create();
            }

            device.DevicePath = device.WaitForDisk();
            device.MatchDiskTimeout();
            return device;
        }
        catch
        {
            // Objects another handler made stay: removing the LUN of a mounted disk would fail every I/O on it.
            device.Teardown(removeConfigFs: !existed);
            throw;
        }
    }

    private void Create()
    {
        _configFs.CreateBackstore(_source.Size, _options.BlockSize, _options.CommandTimeoutSeconds);
        OpenRing(reset: false);
        StartServing();
        _configFs.CreateLoopbackLun();
    }

    private void Adopt()
    {
        var (enabled, size) = _configFs.ReadBackstore();
        if (!enabled || size != _source.Size)
        {
            throw new IOException($"{_configFs.Backstore} exists but is {(enabled ? "" : "not enabled and ")}{size} bytes; this source is {_source.Size} bytes");
        }

        Adopted = true;
        _options.Log?.Invoke($"adopting {_configFs.Backstore}: blocking the device and resetting its ring");
        _configFs.Action("block_dev", 1);
        try
        {
            OpenRing(reset: true);
            StartServing();
        }
        finally
        {
            _configFs.Action("block_dev", 0);
        }

        if (!_configFs.LunLinked)
        {
            _configFs.CreateLoopbackLun(); // the dead handler had not got that far
        }
    }

    private void OpenRing(bool reset)
    {
        var (uioPath, mapSize) = _configFs.FindUio();
        UioDevice = uioPath;
        // The kernel lets one process open the device; a handler that was just killed may still be closing it.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                _uio = TcmuUio.Open(uioPath, mapSize);
                break;
            }
            catch (ErrnoException e) when (e.Errno == Errno.EBUSY && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(50);
            }
        }

        if (reset)
        {
            // After the reset the ring is empty (cmd_head = cmd_tail = 0): the ring is read from there.
            _configFs.Action("reset_ring", 1);
        }

        _ring = new TcmuRing(_uio.Address, _uio.Length);
    }

    private void StartServing()
    {
        _loop = new Thread(Serve) { IsBackground = true, Name = $"tcmu {_options.Name}" };
        _loop.Start();
    }

    private void Serve()
    {
        var ring = _ring!;
        var uio = _uio!;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var commands = ring.TakeCommands();
                if (commands.Count == 0)
                {
                    uio.WaitForCommands(PollMilliseconds);
                    continue;
                }

                foreach (var command in commands)
                {
                    if (ring.OutOfOrderCompletion)
                    {
                        _inFlight[command] = Task.Run(() => ExecuteAsync(command));
                    }
                    else
                    {
                        ExecuteAsync(command).GetAwaiter().GetResult();
                    }
                }
            }
        }
        catch (Exception e)
        {
            Fault = e;
            _options.Log?.Invoke($"tcmu {_options.Name}: the serving loop stopped: {e.Message}");
        }
    }

    private async Task ExecuteAsync(TcmuCommand command)
    {
        try
        {
            var result = await _disk.ExecuteAsync(command.Cdb, command.Data, _stop.Token).ConfigureAwait(false);
            if (result.Status != ScsiStatus.Good)
            {
                Interlocked.Increment(ref _checkConditions);
                if (result.Sense.Key == ScsiSenseKey.MediumError)
                {
                    Interlocked.Increment(ref _mediumErrors);
                }

                _options.Log?.Invoke($"tcmu {_options.Name}: opcode 0x{command.Cdb[0]:x2}: CHECK CONDITION {result.Sense}");
            }

            _ring!.Complete(command, result);
            _uio!.NotifyCompletions();
            Interlocked.Increment(ref _completed);
        }
        catch (Exception e)
        {
            // Only a broken ring or a stop gets here: the command stays unanswered and the kernel times it out.
            _options.Log?.Invoke($"tcmu {_options.Name}: command {command.Id} not completed: {e.Message}");
        }
        finally
        {
            _inFlight.TryRemove(command, out _);
        }
    }

    private string WaitForDisk()
    {
        var address = _configFs.ScsiAddress();
        var blockDir = Path.Combine("/sys/bus/scsi/devices", address, "block");
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < _options.DeviceTimeout)
        {
            if (Fault is { } fault)
            {
                throw new IOException($"the TCMU handler of {_options.Name} failed while the kernel probed the disk", fault);
            }

            var name = Directory.Exists(blockDir) ? Directory.EnumerateDirectories(blockDir).Select(Path.GetFileName).FirstOrDefault() : null;
            if (name is not null && Path.Exists($"/dev/{name}"))
            {
                return $"/dev/{name}";
            }

            Thread.Sleep(50);
        }

        throw new TimeoutException($"no disk appeared at SCSI address {address} within {_options.DeviceTimeout.TotalSeconds:F0} s of linking {_configFs.LunLink}");
    }

    /// <summary>
    /// Gives the SCSI disk the handler's command timeout (sd's own default is 30 s): while a restarted handler is
    /// on its way back, the SCSI layer must not abort and fail the commands the ring holds before the target does.
    /// </summary>
    private void MatchDiskTimeout()
    {
        var timeout = Path.Combine("/sys/block", Path.GetFileName(DevicePath), "device", "timeout");
        if (File.Exists(timeout) && int.TryParse(File.ReadAllText(timeout).Trim(), out var current) && current < _options.CommandTimeoutSeconds)
        {
            File.WriteAllText(timeout, _options.CommandTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Stops serving, flushes the source, and removes the LUN, target and backstore in reverse order of creation.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // The LUN goes first, while the ring is still served: the kernel sends SYNCHRONIZE CACHE as it removes the disk.
        await Task.Run(_configFs.RemoveLoopback).ConfigureAwait(false);
        await StopServingAsync().ConfigureAwait(false);
        if (!_disk.Info.ReadOnly)
        {
            await _source.FlushAsync().ConfigureAwait(false);
        }

        Teardown(removeConfigFs: true);
    }

    private async Task StopServingAsync()
    {
        await Task.WhenAll(_inFlight.Values).ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        _loop?.Join();
        await Task.WhenAll(_inFlight.Values).ConfigureAwait(false);
    }

    private void Teardown(bool removeConfigFs)
    {
        if (removeConfigFs)
        {
            _configFs.RemoveLoopback(); // idempotent; still served if the loop runs
        }

        _stop.Cancel();
        _loop?.Join();
        _uio?.Dispose();
        _uio = null;
        if (removeConfigFs)
        {
            _configFs.RemoveBackstore();
        }

        _stop.Dispose();
    }
}
