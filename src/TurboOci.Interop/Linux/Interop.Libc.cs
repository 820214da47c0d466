using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>
/// The C library calls TurboOci makes directly. C names stay inside this file; the rest of the
/// code goes through <see cref="Posix"/>, <see cref="Mounts"/> and <see cref="LoopDevice"/>.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Name = "libc";

    [LibraryImport(Name, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport(Name, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(SafeFileHandle fd, byte* buffer, nint count);

    [LibraryImport(Name, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(SafeFileHandle fd, byte* buffer, nint count);

    [LibraryImport(Name, EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(SafeFileHandle fd, nuint request, nint argument);

    [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(SafeFileHandle fd, nuint request, void* argument);

    [LibraryImport(Name, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fileSystemType, nuint flags, string? data);

    [LibraryImport(Name, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    [LibraryImport(Name, EntryPoint = "getuid")]
    internal static partial uint GetUid();

    [LibraryImport(Name, EntryPoint = "getgid")]
    internal static partial uint GetGid();

    /// <summary>struct pollfd from poll.h.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }
}
