using System.Runtime.InteropServices;
using System.Text;

namespace TurboOci.Testing;

/// <summary>
/// Extended attributes of a file on the host, read and written with the system calls directly (no need for
/// the attr package's getfattr/setfattr). Symlinks are not followed.
/// </summary>
public static class Xattrs
{
    /// <summary>Every attribute of <paramref name="path"/> with its exact value.</summary>
    public static IReadOnlyDictionary<string, byte[]> Get(string path)
    {
        var result = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        var names = CallGrowing(buffer => llistxattr(path, buffer, (nuint)buffer.Length), path);
        foreach (var name in Encoding.UTF8.GetString(names).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            result[name] = CallGrowing(buffer => lgetxattr(path, name, buffer, (nuint)buffer.Length), path);
        }

        return result;
    }

    /// <summary>Sets one attribute of <paramref name="path"/>.</summary>
    public static void Set(string path, string name, ReadOnlySpan<byte> value)
    {
        if (lsetxattr(path, name, value.ToArray(), (nuint)value.Length, 0) != 0)
        {
            throw new IOException($"lsetxattr {path} {name}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    // The list/get calls report the size needed when passed an empty buffer; the value can grow between
    // the two calls (ERANGE), so retry.
    private static byte[] CallGrowing(Func<byte[], nint> call, string path)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var size = call([]);
            if (size < 0)
            {
                throw new IOException($"xattr call on {path}: {Marshal.GetLastPInvokeErrorMessage()}");
            }

            var buffer = new byte[size];
            var got = size == 0 ? 0 : call(buffer);
            if (got >= 0)
            {
                return buffer[..(int)got];
            }

            if (Marshal.GetLastPInvokeError() != 34 /* ERANGE */)
            {
                throw new IOException($"xattr call on {path}: {Marshal.GetLastPInvokeErrorMessage()}");
            }
        }

        throw new IOException($"xattrs of {path} keep changing");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern nint llistxattr([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] list, nuint size);

    [DllImport("libc", SetLastError = true)]
    private static extern nint lgetxattr([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte[] value, nuint size);

    [DllImport("libc", SetLastError = true)]
    private static extern int lsetxattr([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte[] value, nuint size, int flags);
}
