using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

/// <summary>open(2) flags (asm-generic/fcntl.h, x86-64 and arm64 agree on these).</summary>
[Flags]
public enum OpenFlags
{
    ReadOnly = 0,
    WriteOnly = 1,
    ReadWrite = 2,
    NonBlocking = 0x800,
    CloseOnExec = 0x80000,
}

/// <summary>
/// File-descriptor calls that .NET's own file APIs do not cover: character devices such as
/// /dev/fuse, where one read(2) returns one whole message and poll(2) says when one is waiting.
/// </summary>
/// <remarks>
/// <see cref="Read"/>, <see cref="Write"/> and <see cref="PollIn"/> return <c>-errno</c> instead of
/// throwing: protocol loops treat EINTR, EAGAIN and ENOENT as ordinary events, many times a second.
/// </remarks>
public static unsafe class Posix
{
    private const short PollInEvent = 0x001;

    /// <summary>Opens a path with open(2) and owns the descriptor.</summary>
    public static SafeFileHandle Open(string path, OpenFlags flags)
    {
        var fd = ErrnoException.Check(Libc.Open(path, (int)(flags | OpenFlags.CloseOnExec), 0), "open", path);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>read(2): bytes read, or -errno.</summary>
    public static int Read(SafeFileHandle fd, Span<byte> buffer)
    {
        fixed (byte* pointer = buffer)
        {
            var result = Libc.Read(fd, pointer, buffer.Length);
            return result >= 0 ? (int)result : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>write(2): bytes written, or -errno.</summary>
    public static int Write(SafeFileHandle fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* pointer = buffer)
        {
            var result = Libc.Write(fd, pointer, buffer.Length);
            return result >= 0 ? (int)result : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>poll(2) for readability of one descriptor: 1 when readable (or hung up), 0 on timeout, or -errno.</summary>
    public static int PollIn(SafeFileHandle fd, int timeoutMilliseconds)
    {
        var added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            var entry = new Libc.PollFd { Fd = (int)fd.DangerousGetHandle(), Events = PollInEvent };
            var result = Libc.Poll(&entry, 1, timeoutMilliseconds);
            return result >= 0 ? result : -Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
    }

    /// <summary>The real user and group id of this process, as FUSE's user_id= and group_id= want them.</summary>
    public static (uint User, uint Group) Identity => (Libc.GetUid(), Libc.GetGid());
}
