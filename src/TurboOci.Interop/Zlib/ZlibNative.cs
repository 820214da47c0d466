using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

// Every native signature in this assembly uses blittable types only; this makes the runtime
// refuse anything else instead of marshalling it silently.
[assembly: DisableRuntimeMarshalling]

namespace TurboOci.Interop.Zlib;

/// <summary>
/// zlib's <c>z_stream</c> on LP64 Linux (zlib 1.2.x), field for field. It always lives in
/// native memory (<see cref="ZStreamHandle"/>) because zlib keeps a pointer back to it in its
/// internal state: a managed copy could be moved by the GC while zlib holds that pointer.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct ZStream
{
    public byte* NextIn;
    public uint AvailIn;
    public nuint TotalIn;
    public byte* NextOut;
    public uint AvailOut;
    public nuint TotalOut;
    public byte* Msg;
    public void* State;
    public void* ZAlloc;
    public void* ZFree;
    public void* Opaque;
    public int DataType;
    public nuint Adler;
    public nuint Reserved;
}

/// <summary>The zlib entry points TurboOci uses, bound to the system library (the same zlib overlaybd links).</summary>
internal static unsafe partial class ZlibNative
{
    private const string Library = "libz.so.1";

    public const int ZOk = 0;
    public const int ZStreamEnd = 1;
    public const int ZNeedDict = 2;
    public const int ZStreamError = -2;
    public const int ZDataError = -3;
    public const int ZMemError = -4;
    public const int ZBufError = -5;

    public const int ZNoFlush = 0;
    public const int ZFinish = 4;
    public const int ZBlock = 5;

    [LibraryImport(Library, EntryPoint = "zlibVersion")]
    public static partial byte* ZlibVersion();

    [LibraryImport(Library, EntryPoint = "inflateInit2_")]
    public static partial int InflateInit2(ZStream* stream, int windowBits, byte* version, int streamSize);

    [LibraryImport(Library, EntryPoint = "inflate")]
    public static partial int Inflate(ZStream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "inflateReset")]
    public static partial int InflateReset(ZStream* stream);

    [LibraryImport(Library, EntryPoint = "inflatePrime")]
    public static partial int InflatePrime(ZStream* stream, int bits, int value);

    [LibraryImport(Library, EntryPoint = "inflateSetDictionary")]
    public static partial int InflateSetDictionary(ZStream* stream, byte* dictionary, uint length);

    [LibraryImport(Library, EntryPoint = "inflateEnd")]
    public static partial int InflateEnd(ZStream* stream);

    [LibraryImport(Library, EntryPoint = "deflateInit_")]
    public static partial int DeflateInit(ZStream* stream, int level, byte* version, int streamSize);

    [LibraryImport(Library, EntryPoint = "deflate")]
    public static partial int Deflate(ZStream* stream, int flush);

    [LibraryImport(Library, EntryPoint = "deflateEnd")]
    public static partial int DeflateEnd(ZStream* stream);

    [LibraryImport(Library, EntryPoint = "deflateBound")]
    public static partial nuint DeflateBound(ZStream* stream, nuint sourceLength);

    /// <summary>The version string of the loaded library, passed back to the init functions as zlib requires.</summary>
    public static byte* Version { get; } = ZlibVersion();

    public static string VersionString => Marshal.PtrToStringUTF8((nint)Version) ?? "?";

    public static int StreamSize => sizeof(ZStream);

    /// <summary>zlib's message for the last error of <paramref name="stream"/>, or the code's meaning.</summary>
    public static string Describe(ZStream* stream, int code)
    {
        var message = stream is null || stream->Msg is null ? null : Marshal.PtrToStringUTF8((nint)stream->Msg);
        return message ?? code switch
        {
            ZStreamError => "stream error",
            ZDataError => "data error",
            ZMemError => "out of memory",
            ZBufError => "buffer error",
            ZNeedDict => "dictionary needed",
            _ => $"zlib error {code}",
        };
    }
}
