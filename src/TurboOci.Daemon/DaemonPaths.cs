namespace TurboOci.Daemon;

/// <summary>
/// Where one daemon keeps its things: everything lives in the folder of its control socket, so a second
/// daemon (a test, a second instance) with another socket never touches the first one's devices.
/// </summary>
public sealed record DaemonPaths
{
    /// <summary>The control socket of the system's daemon.</summary>
    public const string DefaultSocket = "/run/turbooci/turbooci.sock";

    /// <summary>Overrides <see cref="DefaultSocket"/> for every verb that has no --socket.</summary>
    public const string SocketVariable = "TURBOOCI_SOCKET";

    public DaemonPaths(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        SocketPath = Path.GetFullPath(socketPath);
        Directory = Path.GetDirectoryName(SocketPath)!;
    }

    /// <summary>The socket given, else $TURBOOCI_SOCKET, else <see cref="DefaultSocket"/>.</summary>
    public static DaemonPaths For(string? socketPath)
    {
        if (string.IsNullOrEmpty(socketPath))
        {
            socketPath = Environment.GetEnvironmentVariable(SocketVariable);
        }

        return new DaemonPaths(string.IsNullOrEmpty(socketPath) ? DefaultSocket : socketPath);
    }

    public string SocketPath { get; }

    /// <summary>The folder of the socket, holding the state, lock, log, FUSE mounts and NBD sockets.</summary>
    public string Directory { get; }

    /// <summary>The attached devices, rewritten after every change (JSON).</summary>
    public string StateFile => Path.Combine(Directory, "devices.json");

    /// <summary>Locked (flock) while a daemon runs: one daemon per folder.</summary>
    public string LockFile => Path.Combine(Directory, "serve.lock");

    /// <summary>The process id of the daemon that holds the lock (left behind when it dies).</summary>
    public string PidFile => Path.Combine(Directory, "serve.pid");

    /// <summary>Where a daemon started in the background by a client writes its output.</summary>
    public string LogFile => Path.Combine(Directory, "serve.log");

    /// <summary>The FUSE mount point of a fuse device.</summary>
    public string FuseDirectory(string name) => Path.Combine(Directory, "fuse", name);

    /// <summary>
    /// The configfs name of a tcmu device: its name and a digest of this folder, the same after a restart (so the
    /// new daemon adopts the disk) and different for another daemon's device of the same name.
    /// </summary>
    public string TcmuName(string name) =>
        $"{name}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Directory)))[..8]}";

    /// <summary>The Unix socket of an nbd device.</summary>
    public string NbdSocket(string name) => Path.Combine(Directory, "nbd", name + ".sock");
}
