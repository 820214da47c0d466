using System.Runtime.InteropServices;

namespace TurboOci.Interop.Linux;

/// <summary>The C library calls io_uring and ublk need: raw system calls (glibc has no io_uring wrappers) and mmap/madvise.</summary>
internal static unsafe partial class Libc
{
    internal const int ProtRead = 0x1;
    internal const int ProtWrite = 0x2;
    internal const int MapShared = 0x01;
    internal const int MapPopulate = 0x8000;
    internal const int MadvDontNeed = 4;

    /// <summary>MAP_FAILED, (void*)-1.</summary>
    internal static readonly nint MapFailed = -1;

    [LibraryImport(Name, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long argument1, long argument2, long argument3, long argument4, long argument5, long argument6);

    [LibraryImport(Name, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Name, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(nint address, nuint length);

    [LibraryImport(Name, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int Madvise(nint address, nuint length, int advice);
}
