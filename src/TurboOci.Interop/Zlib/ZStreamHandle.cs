using System.Runtime.InteropServices;

namespace TurboOci.Interop.Zlib;

/// <summary>
/// Owns one native <see cref="ZStream"/> and zlib's state behind it: allocated zeroed in native
/// memory (never moved by the GC), ended with <c>inflateEnd</c>/<c>deflateEnd</c> and freed exactly
/// once, even if the owner forgets to dispose.
/// </summary>
internal sealed unsafe class ZStreamHandle : SafeHandle
{
    private readonly bool _deflate;
    private bool _initialized;

    public ZStreamHandle(bool deflate)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        _deflate = deflate;
        SetHandle((IntPtr)NativeMemory.AllocZeroed((nuint)sizeof(ZStream)));
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public ZStream* Stream => (ZStream*)handle;

    /// <summary>Marks zlib's state as allocated, so release ends it.</summary>
    public void MarkInitialized() => _initialized = true;

    protected override bool ReleaseHandle()
    {
        if (_initialized)
        {
            _ = _deflate ? ZlibNative.DeflateEnd(Stream) : ZlibNative.InflateEnd(Stream);
        }

        NativeMemory.Free((void*)handle);
        return true;
    }
}
