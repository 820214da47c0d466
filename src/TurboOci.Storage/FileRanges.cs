using Microsoft.Win32.SafeHandles;

namespace TurboOci.Storage;

/// <summary>
/// A run of a block source's bytes as they are stored: <see cref="Length"/> bytes kept verbatim in the local
/// file <see cref="File"/> from <see cref="FileOffset"/>, or (when <see cref="File"/> is null) bytes that read
/// as zeros. A frontend can then send the file's bytes (say from a mapping of it) without reading them
/// into a buffer first.
/// </summary>
public readonly record struct FileRange(SafeFileHandle? File, long FileOffset, int Length)
{
    /// <summary>A run of <paramref name="length"/> bytes that read as zeros and live in no file.</summary>
    public static FileRange Zeros(int length) => new(null, 0, length);

    public bool IsZeros => File is null;
}

/// <summary>
/// A block source that can say where its bytes are stored: a layer whose uncompressed data sits in local
/// files, a stack of such layers, an image over one. Sources that transform their bytes (decompression,
/// the network) do not implement it, or answer false.
/// </summary>
public interface IFileRangeSource
{
    /// <summary>
    /// Describes the longest run starting at <paramref name="offset"/>, at most <paramref name="length"/> bytes
    /// and never past the end of the source, that is stored verbatim in one local file or reads as zeros.
    /// Reading the run's file bytes gives exactly what <see cref="BlockSource.ReadAt"/> returns for them.
    /// </summary>
    /// <returns>False when the run is not stored verbatim in a local file (compressed, remote), or when
    /// <paramref name="offset"/> is at or past the end or <paramref name="length"/> is not positive.</returns>
    bool TryGetFileRange(long offset, int length, out FileRange range);
}

/// <summary>
/// Resolves ranges of any block source to <see cref="FileRange"/>s: plain files and slices of them are
/// resolved here, everything else through <see cref="IFileRangeSource"/>.
/// </summary>
public static class FileRanges
{
    /// <summary>Whether <paramref name="source"/> can resolve ranges at all (some of them may still answer false).</summary>
    public static bool CanResolve(BlockSource source) => source switch
    {
        FileBlockSource or ZeroBlockSource or IFileRangeSource => true,
        SliceBlockSource slice => CanResolve(slice.Inner),
        _ => false,
    };

    /// <summary>The contract of <see cref="IFileRangeSource.TryGetFileRange"/>, for any source.</summary>
    public static bool TryResolve(BlockSource source, long offset, int length, out FileRange range)
    {
        ArgumentNullException.ThrowIfNull(source);
        range = default;
        if (offset < 0 || length <= 0 || offset >= source.Size)
        {
            return false;
        }

        var clamped = (int)Math.Min(length, source.Size - offset);
        switch (source)
        {
            case FileBlockSource file:
                range = new FileRange(file.Handle, offset, clamped);
                return true;
            case ZeroBlockSource:
                range = FileRange.Zeros(clamped);
                return true;
            case SliceBlockSource slice:
                return TryResolve(slice.Inner, checked(slice.Start + offset), clamped, out range);
            case IFileRangeSource resolvable:
                return resolvable.TryGetFileRange(offset, clamped, out range);
            default:
                return false;
        }
    }
}
