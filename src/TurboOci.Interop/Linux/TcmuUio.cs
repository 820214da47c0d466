using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>
/// The uio character device of one TCMU backstore (/dev/uioN): its whole map0 (mailbox, command ring, data
/// area) mapped shared, the 4-byte event counter read to wait for new commands, and a 4-byte write to make
/// the kernel reap completions. The kernel lets one process open it at a time (EBUSY otherwise).
/// </summary>
public sealed unsafe class TcmuUio : IDisposable
{
    private readonly SafeFileHandle _fd;
    private nint _address;

    private TcmuUio(SafeFileHandle fd, nint address, long length)
    {
        _fd = fd;
        _address = address;
        Length = length;
    }

    /// <summary>The start of the mapping: the mailbox.</summary>
    public nint Address => _address != 0 ? _address : throw new ObjectDisposedException(nameof(TcmuUio));

    public long Length { get; }

    /// <summary>
    /// Opens <paramref name="devicePath"/> and maps <paramref name="mapLength"/> bytes (sysfs maps/map0/size).
    /// Not populated: the kernel allocates data-area pages only as commands use them, and a fault on any other
    /// page of the data area is SIGBUS.
    /// </summary>
    public static TcmuUio Open(string devicePath, long mapLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mapLength);
        var fd = Posix.Open(devicePath, OpenFlags.ReadWrite);
        try
        {
            var address = Libc.Mmap(0, (nuint)mapLength, Libc.ProtRead | Libc.ProtWrite, Libc.MapShared, (int)fd.DangerousGetHandle(), 0);
            if (address == Libc.MapFailed)
            {
                throw new ErrnoException("mmap", devicePath, Marshal.GetLastPInvokeError());
            }

            return new TcmuUio(fd, address, mapLength);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMilliseconds"/> for the kernel to signal new ring entries and consumes
    /// the signal. True when signalled; false on timeout or interruption (the caller re-checks the ring anyway).
    /// </summary>
    public bool WaitForCommands(int timeoutMilliseconds)
    {
        var ready = Posix.PollIn(_fd, timeoutMilliseconds);
        if (ready == -(int)Errno.EINTR || ready == 0)
        {
            return false;
        }

        if (ready < 0)
        {
            throw new ErrnoException("poll", "tcmu uio", -ready);
        }

        Span<byte> counter = stackalloc byte[4];
        var read = Posix.Read(_fd, counter);
        return read == 4 || (read < 0 && read != -(int)Errno.EINTR && read != -(int)Errno.EAGAIN
            ? throw new ErrnoException("read", "tcmu uio", -read)
            : false);
    }

    /// <summary>Tells the kernel that cmd_tail moved: it completes the commands the handler answered.</summary>
    public void NotifyCompletions()
    {
        Span<byte> value = stackalloc byte[4];
        int written;
        while ((written = Posix.Write(_fd, value)) == -(int)Errno.EINTR)
        {
        }

        if (written < 0)
        {
            throw new ErrnoException("write", "tcmu uio", -written);
        }
    }

    public void Dispose()
    {
        var address = Interlocked.Exchange(ref _address, 0);
        if (address != 0)
        {
            Libc.Munmap(address, (nuint)Length);
        }

        _fd.Dispose();
    }
}
