using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TurboOci.Testing;

/// <summary>The fields of lstat(2) that .NET's file APIs do not expose (owner, inode, links, device number).</summary>
public readonly record struct PosixStat(ulong Device, ulong Inode, ulong Links, uint Mode, uint Uid, uint Gid, ulong RawDeviceNumber, long Size, long MtimeSeconds)
{
    public uint FileTypeBits => Mode & 0xF000;

    public uint Permissions => Mode & 0xFFF;

    /// <summary>Major number of a device node (glibc's encoding of dev_t).</summary>
    public uint DeviceMajor => (uint)(((RawDeviceNumber >> 8) & 0xFFF) | ((RawDeviceNumber >> 32) & ~0xFFFUL));

    /// <summary>Minor number of a device node.</summary>
    public uint DeviceMinor => (uint)((RawDeviceNumber & 0xFF) | ((RawDeviceNumber >> 12) & ~0xFFUL));

    /// <summary>lstat(2) of <paramref name="path"/> (a symlink itself, not its target).</summary>
    public static PosixStat LStat(string path)
    {
        var buffer = new byte[256];
        if (lstat(path, buffer) != 0)
        {
            throw new IOException($"lstat {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        // struct stat differs between the 64-bit ABIs: x86-64 puts st_nlink (8 bytes) before st_mode,
        // the generic ABI (arm64) puts st_mode first and a 4-byte st_nlink after it.
        ReadOnlySpan<byte> s = buffer;
        return RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => new PosixStat(
                U64(s, 0), U64(s, 8), U64(s, 16), U32(s, 24), U32(s, 28), U32(s, 32), U64(s, 40), (long)U64(s, 48), (long)U64(s, 88)),
            Architecture.Arm64 => new PosixStat(
                U64(s, 0), U64(s, 8), U32(s, 20), U32(s, 16), U32(s, 24), U32(s, 28), U64(s, 32), (long)U64(s, 48), (long)U64(s, 88)),
            var other => throw new PlatformNotSupportedException($"struct stat layout of {other} is not known"),
        };
    }

    private static ulong U64(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(s[offset..]);

    private static uint U32(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);

    [DllImport("libc", SetLastError = true)]
    private static extern int lstat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
