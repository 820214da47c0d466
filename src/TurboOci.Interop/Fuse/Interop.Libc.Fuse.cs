using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>The C library call of the FUSE reply path that copies a payload only once: header and mapped file bytes in one writev.</summary>
internal static unsafe partial class Libc
{
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
