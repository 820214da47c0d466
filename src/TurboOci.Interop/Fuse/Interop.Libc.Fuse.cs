using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>The C library calls of the FUSE reply path that copies a payload only once (<see cref="Fuse.MappedFile"/>).</summary>
internal static unsafe partial class Libc
{
    // Named apart from the io_uring/ublk mmap imports, which other code owns and may change.
    internal const int FileMapProtRead = 0x1;   // PROT_READ
    internal const int FileMapShared = 0x01;    // MAP_SHARED
    internal static readonly nint FileMapFailed = -1; // MAP_FAILED

    [LibraryImport(Name, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint MapFile(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Name, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int UnmapFile(nint address, nuint length);

    [LibraryImport(Name, EntryPoint = "writev", SetLastError = true)]
    internal static partial nint Writev(SafeFileHandle fd, IoVector* vectors, int count);

    /// <summary>struct iovec from sys/uio.h.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVector
    {
        public void* Base;
        public nuint Length;
    }
}
