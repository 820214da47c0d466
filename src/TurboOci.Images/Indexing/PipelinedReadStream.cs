using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using TurboOci.Storage;

[assembly: InternalsVisibleTo("TurboOci.Images.Tests")]

namespace TurboOci.Images.Indexing;

/// <summary>
/// Reads a source stream on a background thread into a small bounded queue of chunks, so the producer (e.g.
/// inflating and indexing the gzip) and the consumer (parsing the tar, driving the ext4 engine) run on two cores.
/// Memory is bounded by <c>chunkSize × (depth + 2)</c>: chunk buffers are recycled, so a pass over a layer of any
/// size allocates them once (fresh megabyte arrays per chunk cost page faults, zeroing and GC on both cores).
/// The source sees one sequential reader, exactly as without the pipeline.
/// </summary>
internal sealed class PipelinedReadStream : ReadOnlyForwardStream, ISkippableStream
{
    private readonly BlockingCollection<ArraySegment<byte>> _chunks;
    private readonly ConcurrentBag<byte[]> _free = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _producer;
    private ArraySegment<byte> _current = ArraySegment<byte>.Empty;
    private bool _finished;

    /// <param name="afterChunk">Called on the producing thread after each chunk is read (progress).</param>
    public PipelinedReadStream(Stream source, int chunkSize = 1 << 20, int depth = 8, Action? afterChunk = null)
    {
        _chunks = new BlockingCollection<ArraySegment<byte>>(depth);
        _producer = Task.Factory.StartNew(() => Produce(source, chunkSize, afterChunk), TaskCreationOptions.LongRunning);
    }

    private void Produce(Stream source, int chunkSize, Action? afterChunk)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var buffer = _free.TryTake(out var recycled) ? recycled : new byte[chunkSize];
                var n = source.ReadAtLeast(buffer, chunkSize, throwOnEndOfStream: false);
                if (n == 0)
                {
                    break;
                }

                _chunks.Add(new ArraySegment<byte>(buffer, 0, n), _stop.Token);
                afterChunk?.Invoke();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // The consumer went away (an error, or disposal): stop quietly.
        }
        finally
        {
            _chunks.CompleteAdding();
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (!NextChunk())
        {
            return 0;
        }

        var n = Math.Min(buffer.Length, _current.Count);
        _current.AsSpan(0, n).CopyTo(buffer);
        _current = _current[n..];
        return n;
    }

    public long Skip(long count)
    {
        if (count <= 0 || !NextChunk())
        {
            return 0;
        }

        var n = (int)Math.Min(count, _current.Count);
        _current = _current[n..];
        return n;
    }

    /// <summary>Makes the current chunk non-empty; false at the end of the source.</summary>
    private bool NextChunk()
    {
        while (_current.Count == 0)
        {
            if (_current.Array is { Length: > 0 } used)
            {
                _free.Add(used);
                _current = ArraySegment<byte>.Empty;
            }

            if (_finished || !_chunks.TryTake(out _current, Timeout.Infinite))
            {
                _finished = true;
                _current = ArraySegment<byte>.Empty;

                // Surfaces the producer's exception (a damaged gzip stream) to the consumer.
                _producer.GetAwaiter().GetResult();
                return false;
            }
        }

        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stop.Cancel();
            try
            {
                _producer.Wait();
            }
            catch (AggregateException)
            {
                // Already reported to the reader, or irrelevant once the reader gave up.
            }

            _chunks.Dispose();
            _stop.Dispose();
        }

        base.Dispose(disposing);
    }
}
