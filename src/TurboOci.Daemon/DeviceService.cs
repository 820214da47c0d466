using System.Text.RegularExpressions;
using TurboOci.Formats.Lsmt;
using TurboOci.Images;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Daemon;

/// <summary>
/// The devices of one daemon: each a config.v1.json layer stack (or a raw image) served through a frontend,
/// optionally with its ext4 mounted. Requests are handled one at a time; the state file is rewritten after
/// every change so that a daemon restarted after a crash serves the same devices again.
/// </summary>
public sealed partial class DeviceService : IAsyncDisposable
{
    private readonly DaemonPaths _paths;
    private readonly Action<string> _log;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, AttachedDevice> _devices = new(StringComparer.Ordinal);

    // Stacks whose config names a repoBlobUrl read their blobs through one client and range cache for the whole
    // daemon, configured by overlaybd's /etc/overlaybd/overlaybd.json, as every device of an overlaybd node shares them.
    private readonly NodeRegistry _registry = new();

    public DeviceService(DaemonPaths paths, Action<string> log)
    {
        _paths = paths;
        _log = log;
    }

    /// <summary>The attached devices, in attach order.</summary>
    public Task<IReadOnlyList<DeviceRecord>> ListAsync() => UnderGateAsync(() => Task.FromResult(Records()));

    /// <summary>Serves <paramref name="request"/>'s stack and, when it names a mount point, mounts its ext4 there.</summary>
    public Task<DeviceRecord> AttachAsync(ControlRequest request) => UnderGateAsync(async () =>
    {
        var record = Validate(request);
        var device = await StartAsync(record).ConfigureAwait(false);
        _devices.Add(record.Name, device);
        SaveState();
        _log($"attached {record.Name}: {record.Source} via {record.Frontend.Name()} as {device.Record.Device}"
            + (record.MountPoint.Length > 0 ? $", mounted on {record.MountPoint}" : ""));
        return device.Record;
    });

    /// <summary>Stops serving the device named by <paramref name="target"/>: its name, device path, URI or mount point.</summary>
    public Task<DeviceRecord> DetachAsync(string target) => UnderGateAsync(() =>
        RemoveAsync(Find(target) ?? throw new ArgumentException($"no device {target} is attached (see 'turbooci list')")));

    /// <summary>Unmounts the ext4 the daemon mounted on <paramref name="mountPoint"/>, then detaches its device.</summary>
    public Task<DeviceRecord> UnmountAsync(string mountPoint)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint));
        return UnderGateAsync(() => RemoveAsync(_devices.Values.FirstOrDefault(d => d.Record.MountPoint == full)
            ?? throw new ArgumentException($"nothing is mounted on {full} by turbooci (see 'turbooci list')")));
    }

    /// <summary>Requests run one at a time: attaching, mounting and the state file never race.</summary>
    private async Task<T> UnderGateAsync<T>(Func<Task<T>> action)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Detaches one device (refusing a busy mount) and forgets it.</summary>
    private async Task<DeviceRecord> RemoveAsync(AttachedDevice device)
    {
        await StopAsync(device, lazyUnmount: false).ConfigureAwait(false);
        _devices.Remove(device.Record.Name);
        SaveState();
        return device.Record;
    }

    /// <summary>
    /// Detaches every device. With <paramref name="forget"/> they leave the state file too (<c>detach --all</c>);
    /// without, they stay in it, and the next daemon attaches them again (a stop or restart of the service).
    /// Mounts still in use are unmounted lazily: the daemon is going away either way.
    /// </summary>
    public Task<IReadOnlyList<DeviceRecord>> DetachAllAsync(bool forget) => UnderGateAsync<IReadOnlyList<DeviceRecord>>(async () =>
    {
        var detached = new List<DeviceRecord>();
        var errors = new List<string>();
        foreach (var device in _devices.Values.Reverse().ToList())
        {
            try
            {
                await StopAsync(device, lazyUnmount: true).ConfigureAwait(false);
                detached.Add(device.Record);
            }
            catch (Exception e)
            {
                errors.Add($"{device.Record.Name}: {e.Message}");
            }

            _devices.Remove(device.Record.Name);
        }

        if (forget)
        {
            SaveState();
        }

        return errors.Count == 0 ? detached : throw new IOException("some devices did not detach cleanly: " + string.Join("; ", errors));
    });

    /// <summary>
    /// Attaches again what the state file lists, as a daemon starting after a crash or a restart must: dead
    /// FUSE mounts and their loop devices are cleaned first, and recorded mounts are mounted again. A device
    /// that cannot be restored is logged and dropped from the state.
    /// </summary>
    /// <remarks>The gate is taken before the first await: requests that arrive meanwhile wait for the restore.</remarks>
    public Task RestoreAsync(DaemonState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!_gate.Wait(0))
        {
            throw new InvalidOperationException("restore runs first, before any request");
        }

        return Task.Run(() => RestoreHoldingGateAsync(state));
    }

    private async Task RestoreHoldingGateAsync(DaemonState state)
    {
        try
        {
            foreach (var saved in state.Devices)
            {
                try
                {
                    var record = Validate(new ControlRequest
                    {
                        Config = saved.Config,
                        Image = saved.Image,
                        Frontend = saved.Frontend,
                        ReadWrite = saved.ReadWrite,
                        Name = saved.Name,
                        MountPoint = saved.MountPoint,
                    });
                    var device = await StartAsync(record).ConfigureAwait(false);
                    _devices.Add(record.Name, device);
                    _log($"restored {record.Name}: {record.Source} via {record.Frontend.Name()} as {device.Record.Device}"
                        + (record.MountPoint.Length > 0 ? $", mounted on {record.MountPoint}" : ""));
                }
                catch (Exception e)
                {
                    _log($"could not restore {saved.Name} ({saved.Source}): {e.Message}");
                }
            }

            SaveState();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Detaches everything but keeps the state file, as on SIGTERM.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_devices.Count > 0)
        {
            await DetachAllAsync(forget: false).ConfigureAwait(false);
        }

        _registry.Dispose();
        _gate.Dispose();
    }

    private IReadOnlyList<DeviceRecord> Records() => _devices.Values.Select(d => d.Record).ToList();

    private AttachedDevice? Find(string target)
    {
        if (_devices.TryGetValue(target, out var byName))
        {
            return byName;
        }

        var asPath = target.StartsWith('/') ? Path.TrimEndingDirectorySeparator(target) : null;
        return _devices.Values.FirstOrDefault(d => d.Record.Device == target || (asPath is not null && d.Record.MountPoint == asPath));
    }

    private void SaveState()
    {
        Directory.CreateDirectory(_paths.Directory);
        ControlCodec.SaveState(_paths.StateFile, new DaemonState { Devices = Records().Select(r => r with { Device = "" }).ToList() });
    }

    /// <summary>Checks a request against the attached devices, before anything is opened.</summary>
    private DeviceRecord Validate(ControlRequest request)
    {
        if ((request.Config.Length > 0) == (request.Image.Length > 0))
        {
            throw new ArgumentException("give either a config.v1.json (--config) or a raw image (--image)");
        }

        var source = request.Config.Length > 0 ? request.Config : request.Image;
        if (!Path.IsPathRooted(source))
        {
            throw new ArgumentException($"{source}: the daemon needs an absolute path");
        }

        if (!Enum.IsDefined(request.Frontend))
        {
            throw new ArgumentException($"unknown frontend {request.Frontend}");
        }

        var name = request.Name.Length > 0 ? request.Name : UniqueName(source);
        if (!ValidName().IsMatch(name))
        {
            throw new ArgumentException($"device name '{name}': use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'");
        }

        if (_devices.ContainsKey(name))
        {
            throw new ArgumentException($"a device named {name} is already attached");
        }

        var mountPoint = "";
        if (request.MountPoint.Length > 0)
        {
            if (!Path.IsPathRooted(request.MountPoint))
            {
                throw new ArgumentException($"{request.MountPoint}: the daemon needs an absolute mount point");
            }

            mountPoint = Path.TrimEndingDirectorySeparator(Path.GetFullPath(request.MountPoint));
            if (request.Frontend == DeviceFrontend.Nbd)
            {
                throw new ArgumentException("an nbd device is a URI, not a block device the kernel can mount: choose another frontend, or connect it with nbd-client and mount that");
            }

            if (_devices.Values.Any(d => d.Record.MountPoint == mountPoint))
            {
                throw new ArgumentException($"{mountPoint} already has a turbooci device mounted on it");
            }
        }

        // One writer per upper layer (or image): two devices writing it would corrupt each other.
        var full = Path.GetFullPath(source);
        if (_devices.Values.FirstOrDefault(d => d.Record.Source == full && (request.ReadWrite || d.Record.ReadWrite)) is { } busy)
        {
            throw new ArgumentException($"{full} is already attached{(busy.Record.ReadWrite ? " read-write" : "")} as {busy.Record.Name}: a writable stack has one device at a time");
        }

        return new DeviceRecord
        {
            Name = name,
            Config = request.Config.Length > 0 ? full : "",
            Image = request.Image.Length > 0 ? full : "",
            Frontend = request.Frontend,
            ReadWrite = request.ReadWrite,
            MountPoint = mountPoint,
        };
    }

    /// <summary>The stack's folder name (the config's own name for a raw image), made unique with -2, -3...</summary>
    private string UniqueName(string source)
    {
        var folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(source))) ?? "";
        var stem = SanitizeName().Replace(Path.GetFileName(source) == ImageConfig.FormatName ? folder : Path.GetFileNameWithoutExtension(source), "-").Trim('-', '.');
        stem = stem.Length == 0 ? "device" : stem[..Math.Min(stem.Length, 56)];
        var name = stem;
        for (var i = 2; _devices.ContainsKey(name); i++)
        {
            name = $"{stem}-{i}";
        }

        return name;
    }

    private async Task<AttachedDevice> StartAsync(DeviceRecord record)
    {
        ImageConfig? config = null;
        BlockSource? source = null;
        IServedFrontend? frontend = null;
        try
        {
            if (record.Config.Length > 0)
            {
                config = ImageConfig.Load(record.Config);
                source = OpenStack(config, record.ReadWrite);
            }
            else
            {
                source = record.ReadWrite ? FileBlockSource.OpenReadWrite(record.Image) : FileBlockSource.OpenRead(record.Image);
            }

            var readOnly = !record.ReadWrite;
            frontend = record.Frontend switch
            {
                DeviceFrontend.Fuse => FuseLoopFrontend.Start(_paths.FuseDirectory(record.Name), source, readOnly),
                DeviceFrontend.Nbd => NbdFrontend.Start(_paths.NbdSocket(record.Name), record.Name, source, readOnly, _log),
                DeviceFrontend.Tcmu => TcmuFrontend.Start(_paths.TcmuName(record.Name), source, readOnly, _log),
                DeviceFrontend.Ublk => UblkFrontend.Start(source, readOnly),
                _ => throw new ArgumentException($"unknown frontend {record.Frontend}"),
            };

            // A TCMU disk adopted after a crash kept its mount: the file system never noticed the restart.
            if (record.MountPoint.Length > 0 && Mounts.At(record.MountPoint)?.Source != frontend.Device)
            {
                Ext4Mounts.Mount(frontend.Device, record.MountPoint, readOnly);
            }

            var device = new AttachedDevice(record with { Device = frontend.Device }, source, frontend);
            WriteResult(config, "success");
            return device;
        }
        catch (Exception e)
        {
            if (frontend is not null)
            {
                await frontend.DisposeAsync().ConfigureAwait(false);
            }

            source?.Dispose();
            WriteResult(config, $"failed:{e.Message}");
            throw;
        }
    }

    /// <summary>
    /// The config's stack. Served read-write, it needs an upper layer; when the config names one whose files do
    /// not exist yet, an empty one is created on the lowers, as overlaybd's snapshotter does (overlaybd-create)
    /// before it starts a writable device.
    /// </summary>
    private ImageStack OpenStack(ImageConfig config, bool readWrite)
    {
        if (readWrite)
        {
            if (config.Upper is not { } upper)
            {
                throw new ArgumentException("the config has no writable upper layer (\"upper\": {\"index\", \"data\"}): attach it read-only, or add one");
            }

            var dataExists = File.Exists(upper.Data);
            var indexExists = File.Exists(upper.Index);
            if (dataExists != indexExists)
            {
                throw new FileNotFoundException($"the upper layer is half there: {(dataExists ? upper.Index : upper.Data)} is missing beside {(dataExists ? upper.Data : upper.Index)}");
            }

            if (!dataExists && upper.Target.Length == 0)
            {
                using var lowers = _registry.OpenLowers(config);
                using var created = WritableLayer.Create(upper.Data, upper.Index, lowers.Size, lower: lowers);
                _log($"created the empty upper layer {upper.Data} + {upper.Index} ({lowers.Size} bytes)");
            }
        }

        return _registry.Open(config);
    }

    private static void WriteResult(ImageConfig? config, string result)
    {
        if (config is { ResultFile.Length: > 0 })
        {
            File.WriteAllText(config.ResultFile, result);
        }
    }

    /// <summary>Unmounts (lazily if allowed and busy), stops the frontend, flushes the upper and closes the stack's files.</summary>
    private async Task StopAsync(AttachedDevice device, bool lazyUnmount)
    {
        var record = device.Record;
        if (record.MountPoint.Length > 0)
        {
            Ext4Mounts.Unmount(record.MountPoint, record.Device, lazyUnmount);
        }

        await device.Frontend.DisposeAsync().ConfigureAwait(false);
        if (device.Source.CanWrite)
        {
            device.Source.Flush();
        }

        device.Source.Dispose();
        _log($"detached {record.Name} ({record.Device}){BlobReads(device.Source)}");
    }

    /// <summary>How much of the original layer blobs a stack really read: the point of lazy loading.</summary>
    private static string BlobReads(BlockSource source)
    {
        if (source is not ImageStack { TargetBlobs: { Count: > 0 } blobs })
        {
            return "";
        }

        var read = blobs.Sum(b => b.BytesRead);
        var size = blobs.Sum(b => b.Size);
        return $"; layer blobs: read {read} of {size} bytes ({(size == 0 ? 0 : 100.0 * read / size):0.0}%) in {blobs.Sum(b => b.Reads)} reads from {blobs.Count} blobs";
    }

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ValidName();

    [GeneratedRegex("[^A-Za-z0-9._-]+")]
    private static partial Regex SanitizeName();

    private sealed record AttachedDevice(DeviceRecord Record, BlockSource Source, IServedFrontend Frontend);
}
