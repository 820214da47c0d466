using System.Globalization;

namespace TurboOci.Daemon;

/// <summary>
/// One run of the daemon: takes the daemon lock of its folder, attaches again what the state file lists,
/// answers the control socket until <paramref name="stop"/> (SIGTERM), then detaches every device, keeping
/// them in the state file for the next start.
/// </summary>
public static class DaemonHost
{
    public static async Task RunAsync(DaemonPaths paths, Action<string> log, CancellationToken stop, Action? onReady = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(log);
        Directory.CreateDirectory(paths.Directory);
        using var daemonLock = TakeLock(paths);

        await using var service = new DeviceService(paths, log);

        // The restore takes the service's gate before the socket listens: a client connecting meanwhile (one that
        // started this daemon, say) is answered once the devices of the last run are back, never without them.
        var state = LoadStateOrSetAside(paths, log);
        if (state.Devices.Count > 0)
        {
            log($"restoring {state.Devices.Count} device(s) from {paths.StateFile}");
        }

        var restoring = service.RestoreAsync(state);
        await using var server = ControlServer.Start(paths, service, log);
        log($"serving on {paths.SocketPath} (pid {Environment.ProcessId})");
        await restoring.ConfigureAwait(false);
        onReady?.Invoke();
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            log("stopping: detaching every device (they stay in the state file)");
        }
    }

    /// <summary>
    /// The state of the last run. A damaged state file must not keep the daemon from starting: it is moved aside
    /// (kept for a human to read) and the daemon starts with no devices.
    /// </summary>
    private static DaemonState LoadStateOrSetAside(DaemonPaths paths, Action<string> log)
    {
        try
        {
            return ControlCodec.LoadState(paths.StateFile);
        }
        catch (InvalidDataException e)
        {
            var aside = paths.StateFile + ".damaged";
            File.Move(paths.StateFile, aside, overwrite: true);
            log($"{paths.StateFile} is damaged ({e.Message}): moved to {aside}, starting with no devices");
            return new DaemonState();
        }
    }

    /// <summary>The lock (flock, through FileShare.None) that makes one daemon per folder, and the pid file beside it.</summary>
    private static FileStream TakeLock(DaemonPaths paths)
    {
        FileStream file;
        try
        {
            file = new FileStream(paths.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"another turbooci daemon is serving {paths.Directory} ({paths.LockFile} is locked)", e);
        }

        File.WriteAllText(paths.PidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        return file;
    }
}
