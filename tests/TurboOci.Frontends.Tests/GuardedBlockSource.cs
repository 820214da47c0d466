using TurboOci.Storage;

namespace TurboOci.Frontends.Tests;

/// <summary>
/// A source that records any access a frontend should never make: outside the size, or a write
/// to a read-only export. Tests assert <see cref="Violations"/> stays empty.
/// </summary>
internal sealed class GuardedBlockSource(BlockSource inner) : BlockSource
{
    private readonly List<string> _violations = [];
    private long _writes;
    private long _flushes;
    private long _trims;

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_violations)
            {
                return [.. _violations];
            }
        }
    }

    public long Writes => Interlocked.Read(ref _writes);

    public long Flushes => Interlocked.Read(ref _flushes);

    public long Trims => Interlocked.Read(ref _trims);

    public override long Size => inner.Size;

    public override bool CanWrite => inner.CanWrite;

    public override int ReadAt(long offset, Span<byte> destination)
    {
        Check("read", offset, destination.Length);
        return inner.ReadAt(offset, destination);
    }

    public override void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        Check("write", offset, source.Length);
        Interlocked.Increment(ref _writes);
        inner.WriteAt(offset, source);
    }

    public override void Flush()
    {
        Interlocked.Increment(ref _flushes);
        inner.Flush();
    }

    public override void Trim(long offset, long length)
    {
        Check("trim", offset, length);
        Interlocked.Increment(ref _trims);
        inner.Trim(offset, length);
    }

    private void Check(string what, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Size || length > Size - offset || (what != "read" && !CanWrite))
        {
            lock (_violations)
            {
                _violations.Add($"{what} at {offset}+{length} on a {Size}-byte {(CanWrite ? "writable" : "read-only")} source");
            }
        }
    }
}
