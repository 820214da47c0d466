using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Fuse;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Fuse;

/// <summary>How a <see cref="FuseFileMount"/> presents its device.</summary>
public sealed record FuseFileMountOptions
{
    /// <summary>The name of the one file in the mounted directory.</summary>
    public string FileName { get; init; } = "device";

    /// <summary>Serve read-only even when the source is writable.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Threads reading /dev/fuse; the kernel queues requests from many readers (the loop driver, fio) in parallel.</summary>
    public int Workers { get; init; } = Math.Clamp(Environment.ProcessorCount, 2, 8);

    /// <summary>The largest read or write one request carries (max_write and max_pages).</summary>
    public int MaxTransfer { get; init; } = 1 << 20;

    /// <summary>
    /// Send READ replies of a file-backed source (a <see cref="FileBlockSource"/>, a slice of one, a stack of
    /// uncompressed LSMT layers: see <see cref="FileRanges"/>) from shared mappings of its files: the kernel
    /// copies the files' page cache into the reader's pages once, where reading into a buffer and writing that
    /// copies twice. Runs that are not stored verbatim (compressed, remote) and other sources use a buffer.
    /// </summary>
    public bool MappedReads { get; init; } = true;

    /// <summary>Let users other than the mounting one open the file (allow_other).</summary>
    public bool AllowOther { get; init; } = true;
}

/// <summary>
/// A block source served as one file in a FUSE-mounted directory, by our own implementation of the
/// FUSE kernel protocol on /dev/fuse. Put a loop device on <see cref="FilePath"/> and mount the
/// filesystem inside; detach the loop device before disposing this object.
/// </summary>
public sealed class FuseFileMount : IDisposable, IAsyncDisposable
{
    /// <summary>The FUSE subtype: mounts show as file system type "fuse.turbooci".</summary>
    public const string Subtype = "turbooci";

    private const int IdlePollMilliseconds = 200;

    private readonly SafeFileHandle _device;
    private readonly Thread[] _workers;
    private readonly CancellationTokenSource _stop = new();
    private Exception? _workerFault;
    private int _disposed;

    private readonly MappedFileSet? _mappings;
    private long _mappedReplies;
    private long _bufferedReplies;

    private FuseFileMount(string mountPoint, SafeFileHandle device, FuseFileSystem fileSystem, int workers, string fileName, MappedFileSet? mappings)
    {
        _mappings = mappings;
        MountPoint = mountPoint;
        FilePath = Path.Combine(mountPoint, fileName);
        FileSystem = fileSystem;
        _device = device;
        _workers = new Thread[workers];
        for (var i = 0; i < workers; i++)
        {
            _workers[i] = new Thread(Serve) { IsBackground = true, Name = $"fuse-{Path.GetFileName(mountPoint)}-{i}" };
        }
    }

    public string MountPoint { get; }

    /// <summary>The device file: <see cref="MountPoint"/>/<see cref="FuseFileMountOptions.FileName"/>.</summary>
    public string FilePath { get; }

    /// <summary>The protocol state, with per-opcode request counts.</summary>
    public FuseFileSystem FileSystem { get; }

    /// <summary>How many READ replies went out straight from the mapped source file (see <see cref="FuseFileMountOptions.MappedReads"/>).</summary>
    public long MappedReplies => Interlocked.Read(ref _mappedReplies);

    /// <summary>READ replies with a payload that had to be copied through a buffer (a run no local file holds verbatim).</summary>
    public long BufferedReplies => Interlocked.Read(ref _bufferedReplies);

    /// <summary>A failure of the serving threads themselves (not of the source), if one happened.</summary>
    public Exception? WorkerFault => Volatile.Read(ref _workerFault);

    /// <summary>
    /// Mounts <paramref name="source"/> as a file in <paramref name="mountPoint"/> (an existing,
    /// empty directory) and starts serving. Returns once the kernel has completed INIT.
    /// </summary>
    public static FuseFileMount Mount(string mountPoint, BlockSource source, FuseFileMountOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new FuseFileMountOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Workers, 1);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint));
        if (!Directory.Exists(full))
        {
            throw new DirectoryNotFoundException($"mount point {full} does not exist");
        }

        var (uid, gid) = Posix.Identity;
        var fileSystem = new FuseFileSystem(source, options.FileName, options.ReadOnly, options.MaxTransfer, uid, gid);
        var device = FuseKernel.OpenDevice();
        FuseFileMount? mount = null;
        try
        {
            FuseKernel.Mount(device, full, "turbooci", Subtype, fileSystem.ReadOnly, options.AllowOther);
            // Files are mapped on first use; the mappings live as long as the workers that use them.
            var mappings = options.MappedReads && fileSystem.ResolvesFileRanges ? new MappedFileSet() : null;
            mount = new FuseFileMount(full, device, fileSystem, options.Workers, options.FileName, mappings);
            foreach (var worker in mount._workers)
            {
                worker.Start();
            }

            // The kernel sends INIT right after mount(2); the first file operation waits for it anyway,
            // but returning only once it is answered makes a failed negotiation an exception here.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!fileSystem.Initialized && mount.WorkerFault is null && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(1);
            }

            if (!fileSystem.Initialized)
            {
                throw new IOException($"FUSE INIT on {full} did not complete", mount.WorkerFault);
            }

            return mount;
        }
        catch
        {
            if (mount is not null)
            {
                mount.Dispose();
            }
            else
            {
                device.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Cleans up after a serving process that died: in <paramref name="mountPoint"/>, a FUSE mount
    /// whose connection is gone (every access says ENOTCONN). Filesystems mounted from loop devices
    /// over its files are lazily unmounted, those loop devices detached (deferred by the kernel until
    /// the filesystem lets go), and the FUSE mount lazily unmounted. A live mount is left alone.
    /// </summary>
    /// <returns>Whether a stale mount was found and removed.</returns>
    public static bool CleanupStale(string mountPoint)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint));
        var mount = Mounts.At(full);
        if (mount is null || !mount.FileSystemType.StartsWith("fuse", StringComparison.Ordinal) || IsAlive(full))
        {
            return false;
        }

        DetachLoopDevicesUnder(full);
        var errno = Mounts.TryUnmount(full, UnmountFlags.Detach);
        if (errno != 0 && errno != (int)Errno.EINVAL) // EINVAL: someone else unmounted it meanwhile
        {
            throw new ErrnoException("umount2", full, errno);
        }

        return true;
    }

    /// <summary>Lazily unmounts what is mounted from loop devices backed by files under <paramref name="directory"/>, and detaches them.</summary>
    public static void DetachLoopDevicesUnder(string directory)
    {
        var loops = LoopDevice.FindByBackingFile(directory);
        foreach (var loop in loops)
        {
            foreach (var user in Mounts.Read().Where(m => m.Source == loop.Path).Reverse())
            {
                Mounts.TryUnmount(user.MountPoint, UnmountFlags.Detach);
            }

            loop.Detach();
        }
    }

    private static bool IsAlive(string mountPoint)
    {
        try
        {
            _ = Directory.GetFileSystemEntries(mountPoint);
            return true;
        }
        catch (IOException)
        {
            return false; // ENOTCONN: "Transport endpoint is not connected"
        }
    }

    private void Serve()
    {
        var request = new byte[FileSystem.RequestBufferSize];
        var reply = new byte[FileSystem.ReplyBufferSize];
        using var vector = new FuseReplyVector();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var read = Posix.Read(_device, request);
                if (read < 0)
                {
                    switch ((Errno)(-read))
                    {
                        case Errno.EAGAIN:
                            Posix.PollIn(_device, IdlePollMilliseconds);
                            continue;
                        case Errno.EINTR:
                        case Errno.ENOENT: // the request was interrupted before we read it
                            continue;
                        case Errno.ENODEV: // unmounted: the connection is over
                            return;
                        default:
                            throw new ErrnoException("read", FuseKernel.DevicePath, -read);
                    }
                }

                FilePayload payload = default;
                var length = _mappings is null
                    ? FileSystem.Handle(request.AsSpan(0, read), reply)
                    : FileSystem.Handle(request.AsSpan(0, read), reply, out payload);
                if (!payload.IsEmpty)
                {
                    if (TrySendMapped(payload, reply.AsSpan(0, length), vector))
                    {
                        continue;
                    }

                    length = FileSystem.ReplyFromBuffer(payload, reply); // a run not stored verbatim in a mappable file
                    Interlocked.Increment(ref _bufferedReplies);
                }

                if (length > 0)
                {
                    CheckReplyResult(Posix.Write(_device, reply.AsSpan(0, length)));
                }
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _workerFault, e, null);
        }
    }

    /// <summary>
    /// Sends a READ reply from mappings of the files that hold its bytes, gathered with one writev: false (nothing
    /// sent) when a run is not stored verbatim in a local file, cannot be mapped, or the reply needs too many pieces.
    /// </summary>
    private bool TrySendMapped(in FilePayload payload, ReadOnlySpan<byte> header, FuseReplyVector vector)
    {
        if (!TryGather(payload, vector))
        {
            return false;
        }

        // EFAULT: a file shrank below its mapping; the kernel has failed this request with EIO.
        var sent = vector.Send(_device, header);
        if (sent != -(int)Errno.EFAULT)
        {
            CheckReplyResult(sent);
            Interlocked.Increment(ref _mappedReplies);
        }

        return true;
    }

    /// <summary>
    /// Gathers the payload's runs into <paramref name="vector"/>. A source (or file) that fails to say where its
    /// bytes are answers false: the reply is then read through a buffer, and that read reports the failure.
    /// </summary>
    private bool TryGather(in FilePayload payload, FuseReplyVector vector)
    {
        vector.Clear();
        try
        {
            for (var offset = payload.SourceOffset; vector.PayloadLength < payload.Length;)
            {
                var remaining = payload.Length - vector.PayloadLength;
                if (!FileRanges.TryResolve(FileSystem.Source, offset, remaining, out var run) || run.Length <= 0 || run.Length > remaining)
                {
                    return false;
                }

                var added = run.IsZeros
                    ? vector.TryAddZeros(run.Length)
                    : _mappings!.Get(run.File!, checked(run.FileOffset + run.Length)) is { } mapping && vector.TryAddMapped(mapping, run.FileOffset, run.Length);
                if (!added)
                {
                    return false;
                }

                offset += run.Length;
            }

            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    private static void CheckReplyResult(int written)
    {
        // ENOENT: the request was interrupted and is gone; ENODEV: the connection was aborted.
        if (written < 0 && (Errno)(-written) is not (Errno.ENOENT or Errno.ENODEV))
        {
            throw new ErrnoException("write", FuseKernel.DevicePath, -written);
        }
    }

    /// <summary>
    /// Unmounts and stops serving. If something still holds the mount (a loop device not yet
    /// detached), the unmount is lazy: the directory is gone from the tree at once, and closing the
    /// connection makes that holder's I/O fail instead of hang.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var errno = Mounts.TryUnmount(MountPoint);
        if (errno == (int)Errno.EBUSY)
        {
            Mounts.TryUnmount(MountPoint, UnmountFlags.Detach);
        }

        Shutdown();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// What a crash leaves behind, for tests of <see cref="CleanupStale"/>: the connection closed
    /// (as the kernel closes it when the process dies) and the mount still in place.
    /// </summary>
    internal void Abandon()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Shutdown();
        }
    }

    private void Shutdown()
    {
        _stop.Cancel();
        foreach (var worker in _workers)
        {
            if (worker.IsAlive)
            {
                worker.Join();
            }
        }

        // Closing the last descriptor of a connection aborts it: any request still pending fails.
        _device.Dispose();
        _mappings?.Dispose();
        _stop.Dispose();
    }
}
