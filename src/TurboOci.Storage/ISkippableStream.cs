namespace TurboOci.Storage;

/// <summary>
/// A forward-only stream that can pass over bytes without copying them anywhere (a tar parser skipping file
/// data it only needs the offsets of, reading from an in-memory pipeline).
/// </summary>
public interface ISkippableStream
{
    /// <summary>Passes over up to <paramref name="count"/> bytes; returns how many, 0 only at the end of the stream.</summary>
    long Skip(long count);
}
