using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;

namespace TurboOci.Interop.Fuse;

/// <summary>
/// A read-only shared mapping of a whole local file, so that a FUSE READ reply can be written to
/// /dev/fuse straight from the file's page cache (<see cref="FuseKernel.WriteReply"/>): the kernel
/// then copies each byte once, into the reader's pages, where reading into a buffer first copies
/// it twice. Nothing is read ahead (no MAP_POPULATE): pages are faulted in as replies touch them.
/// </summary>
/// <remarks>
/// Managed code never dereferences the mapping; only the kernel reads it, inside writev(2). If the
/// file shrinks below a mapped page, that read fails with EFAULT (no SIGBUS reaches the process)
/// and the caller answers from a buffer instead.
/// </remarks>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMapping _mapping;

    private MappedFile(MemoryMapping mapping, long length)
    {
        _mapping = mapping;
        Length = length;
    }

    /// <summary>How many bytes of the file are mapped, from offset 0.</summary>
    public long Length { get; }

    /// <summary>Maps the first <paramref name="length"/> bytes of <paramref name="file"/>; null for an empty file, which has nothing to map.</summary>
    public static MappedFile? Map(SafeFileHandle file, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return length == 0 ? null : new MappedFile(MemoryMapping.Map(file, checked((nuint)length), 0, writable: false, populate: false), length);
    }

    /// <summary>Whether [<paramref name="offset"/>, +<paramref name="length"/>) lies inside the mapping.</summary>
    public bool Contains(long offset, int length) => offset >= 0 && length >= 0 && offset <= Length - length;

    /// <summary>
    /// The mapped bytes at <paramref name="offset"/>, to hand to the kernel (<see cref="FuseKernel.WriteReply"/>);
    /// not to be read by managed code, which would take a SIGBUS if the file shrank.
    /// </summary>
    public ReadOnlySpan<byte> KernelView(long offset, int length)
    {
        if (!Contains(offset, length))
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"{length} bytes do not fit in the {Length}-byte mapping");
        }

        return new ReadOnlySpan<byte>((void*)(_mapping.Address + (nint)offset), length);
    }

    /// <summary>The address of mapped bytes, for an iovec handed to the kernel (<see cref="FuseReplyVector"/>).</summary>
    internal nint AddressOf(long offset, int length) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(KernelView(offset, length)));

    public void Dispose() => _mapping.Dispose();
}
