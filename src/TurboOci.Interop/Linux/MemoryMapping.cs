using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>A shared mmap(2) of a file descriptor (io_uring rings, ublk's I/O descriptors, FUSE source files); unmapped on Dispose.</summary>
public sealed unsafe class MemoryMapping : IDisposable
{
    private nint _address;

    private MemoryMapping(nint address, nuint length)
    {
        _address = address;
        Length = length;
    }

    /// <summary>The start of the mapping.</summary>
    public nint Address => _address != 0 ? _address : throw new ObjectDisposedException(nameof(MemoryMapping));

    public nuint Length { get; }

    /// <summary>
    /// Maps <paramref name="length"/> bytes of <paramref name="fd"/> at <paramref name="offset"/>, MAP_SHARED; read-only
    /// unless <paramref name="writable"/> (ublk refuses a writable descriptor mapping). Populated (MAP_POPULATE) unless
    /// <paramref name="populate"/> is false, as for a large file whose pages should fault in only when used.
    /// </summary>
    public static MemoryMapping Map(SafeFileHandle fd, nuint length, long offset, bool writable, bool populate = true)
    {
        var protection = Libc.ProtRead | (writable ? Libc.ProtWrite : 0);
        var flags = Libc.MapShared | (populate ? Libc.MapPopulate : 0);
        var added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            var address = Libc.Mmap(0, length, protection, flags, (int)fd.DangerousGetHandle(), offset);
            return address == Libc.MapFailed
                ? throw new ErrnoException("mmap", $"offset 0x{offset:x}, {length} bytes", Marshal.GetLastPInvokeError())
                : new MemoryMapping(address, length);
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        var address = Interlocked.Exchange(ref _address, 0);
        if (address != 0)
        {
            Libc.Munmap(address, Length);
        }
    }
}
