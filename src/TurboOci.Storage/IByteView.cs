namespace TurboOci.Storage;

/// <summary>
/// Bytes that can be looked at in place, at any offset, from any thread: a memory-mapped file or an array.
/// Consumers that only inspect bytes (hashing, analysing) use it to avoid copying what they could read where it is.
/// </summary>
public interface IByteView
{
    long Length { get; }

    /// <summary>The bytes [<paramref name="offset"/>, +<paramref name="length"/>), which must lie inside the view.</summary>
    ReadOnlySpan<byte> Slice(long offset, int length);

    /// <summary>
    /// Says that no bytes before <paramref name="offset"/> will be looked at again, so a mapped view can let their
    /// pages go (a long blob read front to back then pins only a window of it). Slices taken before stay valid to read.
    /// </summary>
    void ReleaseBefore(long offset)
    {
    }
}
