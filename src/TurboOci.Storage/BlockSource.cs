namespace TurboOci.Storage;

/// <summary>
/// A positional, thread-safe byte-addressed device: a file, a layer, a cache, a blob or a whole
/// layer stack. Every format and frontend sees storage only through this type.
/// </summary>
/// <remarks>
/// Reads never move a cursor, so any number of threads may read one source at once. A read
/// returns fewer bytes than asked only when it reaches <see cref="Size"/>; a read at or past the
/// end returns 0. Writable sources accept writes inside <see cref="Size"/> only.
/// </remarks>
public abstract class BlockSource : IDisposable, IAsyncDisposable
{
    /// <summary>The virtual size in bytes.</summary>
    public abstract long Size { get; }

    /// <summary>Whether <see cref="WriteAt"/>, <see cref="Trim"/> and <see cref="Flush"/> do anything.</summary>
    public virtual bool CanWrite => false;

    /// <summary>Reads up to <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    /// <returns>The number of bytes read: short only at the end of the source.</returns>
    public abstract int ReadAt(long offset, Span<byte> destination);

    /// <summary>The asynchronous form of <see cref="ReadAt"/>; sources with real async I/O override it.</summary>
    public virtual ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(ReadAt(offset, destination.Span));
    }

    /// <summary>Writes all of <paramref name="source"/> at <paramref name="offset"/>.</summary>
    public virtual void WriteAt(long offset, ReadOnlySpan<byte> source) =>
        throw new NotSupportedException($"{GetType().Name} is read-only.");

    public virtual ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        WriteAt(offset, source.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Makes every acknowledged write durable.</summary>
    public virtual void Flush()
    {
    }

    public virtual ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Flush();
        return ValueTask.CompletedTask;
    }

    /// <summary>Declares a range unused: later reads of it return zeros.</summary>
    public virtual void Trim(long offset, long length) =>
        throw new NotSupportedException($"{GetType().Name} does not support trim.");

    /// <summary>
    /// Lists which parts of [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>)
    /// hold data and which are known to read as zeros, in ascending order and without gaps.
    /// The default says "all data", which is always true if not always useful.
    /// </summary>
    public virtual IEnumerable<BlockExtent> GetExtents(long offset, long length)
    {
        var end = Math.Min(Size, offset + length);
        if (end > offset)
        {
            yield return new BlockExtent(offset, end - offset, ExtentKind.Data);
        }
    }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes or throws.</summary>
    public void ReadExactlyAt(long offset, Span<byte> destination)
    {
        var read = ReadAt(offset, destination);
        if (read != destination.Length)
        {
            throw new EndOfStreamException(
                $"{GetType().Name}: wanted {destination.Length} bytes at offset {offset}, got {read} (size {Size}).");
        }
    }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes or throws.</summary>
    public async ValueTask ReadExactlyAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var read = await ReadAtAsync(offset, destination, cancellationToken).ConfigureAwait(false);
        if (read != destination.Length)
        {
            throw new EndOfStreamException(
                $"{GetType().Name}: wanted {destination.Length} bytes at offset {offset}, got {read} (size {Size}).");
        }
    }

    /// <summary>Clamps a request to the source: how many bytes a read at offset can return.</summary>
    protected int ClampLength(long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var size = Size;
        return offset >= size ? 0 : (int)Math.Min(length, size - offset);
    }

    /// <summary>Throws unless [offset, offset+length) lies inside the source.</summary>
    protected void CheckWriteRange(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(length),
                $"{GetType().Name}: range [{offset}, {offset + length}) is past the end ({Size}).");
        }
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    public virtual ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>Whether a range of a source holds data or is known to read as zeros.</summary>
public enum ExtentKind
{
    Data,
    Zero,
}

/// <summary>A byte range of a block source and what it holds.</summary>
public readonly record struct BlockExtent(long Offset, long Length, ExtentKind Kind)
{
    public long End => Offset + Length;
}
