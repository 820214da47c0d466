using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;

namespace TurboOci.Interop.Fuse;

/// <summary>
/// A READ reply gathered from several places without copying: pieces of mapped files (<see cref="MappedFile"/>)
/// and runs of zeros, sent after the reply header with one writev(2). This is how a reply for a layer stack,
/// whose bytes lie in several layer files, still costs the kernel one copy. One instance per serving thread:
/// it is not thread-safe.
/// </summary>
public sealed unsafe class FuseReplyVector : IDisposable
{
    /// <summary>The most payload pieces one reply holds (adjacent pieces of one mapping count once); well under IOV_MAX.</summary>
    public const int MaxPieces = 256;

    /// <summary>Zeros are sent from one shared read-only block of this size, repeated.</summary>
    private const int ZeroBlockSize = 1 << 20;

    private static readonly Lazy<nint> s_zeros = new(() => (nint)NativeMemory.AllocZeroed(ZeroBlockSize)); // lives as long as the process

    private Libc.IoVector* _vectors = (Libc.IoVector*)NativeMemory.Alloc((nuint)(MaxPieces + 1), (nuint)sizeof(Libc.IoVector));
    private int _pieces;

    /// <summary>How many payload bytes the pieces added so far hold.</summary>
    public int PayloadLength { get; private set; }

    /// <summary>Forgets the pieces of the last reply.</summary>
    public void Clear()
    {
        _pieces = 0;
        PayloadLength = 0;
    }

    /// <summary>Appends <paramref name="length"/> bytes of <paramref name="file"/> at <paramref name="offset"/>; false when they are not all mapped or no piece is left.</summary>
    public bool TryAddMapped(MappedFile file, long offset, int length)
    {
        ArgumentNullException.ThrowIfNull(file);
        return file.Contains(offset, length) && TryAdd(file.AddressOf(offset, length), length);
    }

    /// <summary>Appends <paramref name="length"/> zero bytes; false when no piece is left.</summary>
    public bool TryAddZeros(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        for (var done = 0; done < length;)
        {
            var chunk = Math.Min(ZeroBlockSize, length - done);
            if (!TryAdd(s_zeros.Value, chunk))
            {
                return false;
            }

            done += chunk;
        }

        return true;
    }

    /// <summary>
    /// Writes <paramref name="header"/> and then every piece, with one writev(2). Returns the bytes written
    /// or -errno (EFAULT: a mapped page is gone, the file shrank; the kernel then fails the request).
    /// </summary>
    public int Send(SafeFileHandle device, ReadOnlySpan<byte> header)
    {
        var vectors = _vectors != null ? _vectors : throw new ObjectDisposedException(nameof(FuseReplyVector));
        fixed (byte* headerBytes = header)
        {
            vectors[0] = new Libc.IoVector { Base = headerBytes, Length = (nuint)header.Length };
            var result = Libc.Writev(device, vectors, _pieces + 1);
            return result >= 0 ? (int)result : -Marshal.GetLastPInvokeError();
        }
    }

    private bool TryAdd(nint address, int length)
    {
        if (length == 0)
        {
            return true;
        }

        var vectors = _vectors != null ? _vectors : throw new ObjectDisposedException(nameof(FuseReplyVector));
        var last = &vectors[_pieces]; // vectors[0] is the header's slot, so this is the previous piece when _pieces > 0
        if (_pieces > 0 && (byte*)last->Base + last->Length == (byte*)address)
        {
            last->Length += (nuint)length; // the next bytes of the same mapping: one piece
        }
        else if (_pieces < MaxPieces)
        {
            vectors[++_pieces] = new Libc.IoVector { Base = (void*)address, Length = (nuint)length };
        }
        else
        {
            return false;
        }

        PayloadLength += length;
        return true;
    }

    public void Dispose()
    {
        var vectors = _vectors;
        _vectors = null;
        if (vectors != null)
        {
            NativeMemory.Free(vectors);
        }
    }
}
