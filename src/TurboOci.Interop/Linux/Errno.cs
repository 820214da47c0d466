namespace TurboOci.Interop.Linux;

/// <summary>The Linux errno values TurboOci's native calls and kernel protocols use (asm-generic/errno*.h).</summary>
public enum Errno
{
    EPERM = 1,
    ENOENT = 2,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    ERANGE = 34,
    ENOSYS = 38,
    ENODATA = 61,
    EPROTO = 71,
    EOVERFLOW = 75,
    EOPNOTSUPP = 95,
    ESHUTDOWN = 108,
    ENOTCONN = 107,
    ETIMEDOUT = 110,
}

/// <summary>A failed system call: the call, the object it was about, and the errno.</summary>
public sealed class ErrnoException : IOException
{
    public ErrnoException(string call, string? subject, int errno)
        : base($"{call}{(subject is null ? string.Empty : $"({subject})")} failed: {Describe(errno)}", errno)
    {
        Call = call;
        Errno = (Errno)errno;
    }

    /// <summary>The system call or ioctl that failed.</summary>
    public string Call { get; }

    public Errno Errno { get; }

    /// <summary>"EBUSY (16): Device or resource busy" from the C library's own strerror text.</summary>
    public static string Describe(int errno)
    {
        var name = Enum.IsDefined((Errno)errno) ? ((Errno)errno).ToString() : "errno";
        return $"{name} ({errno}): {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}";
    }

    /// <summary>Throws for a -1 result, using the errno captured by the LibraryImport stub.</summary>
    public static int Check(int result, string call, string? subject = null) =>
        result >= 0 ? result : throw new ErrnoException(call, subject, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());

    /// <summary>Throws for a -1 result, using the errno captured by the LibraryImport stub.</summary>
    public static nint Check(nint result, string call, string? subject = null) =>
        result >= 0 ? result : throw new ErrnoException(call, subject, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
}
