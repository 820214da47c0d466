using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Ublk;

/// <summary>
/// One hardware queue of a ublk device, served by its own thread: the thread owns an io_uring, issues
/// FETCH_REQ for every tag (the kernel binds the queue to the task that does), then loops: each completion
/// is a request waiting in the tag's descriptor, served from the block source into the tag's buffer and
/// answered with COMMIT_AND_FETCH_REQ, until STOP_DEV completes every command with UBLK_IO_RES_ABORT.
/// </summary>
internal sealed unsafe class UblkQueue : IDisposable
{
    private readonly ushort _queueId;
    private readonly int _depth;
    private readonly int _bufferSize;
    private readonly BlockSource _source;
    private readonly bool _readOnly;
    private readonly SafeFileHandle _characterDevice;
    private readonly MemoryMapping _descriptors;
    private readonly byte* _buffers;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _fetched = new();
    private readonly Action<string> _reportError;
    private Exception? _setupFailure;

    private UblkQueue(ushort queueId, int depth, int bufferSize, BlockSource source, bool readOnly, SafeFileHandle characterDevice, MemoryMapping descriptors, Action<string> reportError)
    {
        _queueId = queueId;
        _depth = depth;
        _bufferSize = bufferSize;
        _source = source;
        _readOnly = readOnly;
        _characterDevice = characterDevice;
        _descriptors = descriptors;
        _reportError = reportError;
        // The kernel pins these pages while it copies; page alignment keeps a buffer's pages its own.
        _buffers = (byte*)NativeMemory.AlignedAlloc(checked((nuint)depth * (nuint)bufferSize), (nuint)Environment.SystemPageSize);
        _thread = new Thread(Serve) { IsBackground = true, Name = $"ublk queue {queueId}" };
    }

    /// <summary>
    /// Maps queue <paramref name="queueId"/>'s descriptor array from the character device and starts its
    /// thread; <see cref="WaitFetched"/> then says when every tag has been fetched.
    /// </summary>
    public static UblkQueue Start(
        SafeFileHandle characterDevice, ushort queueId, int depth, int bufferSize, BlockSource source, bool readOnly, Action<string> reportError)
    {
        var page = Environment.SystemPageSize;
        var descriptorBytes = RoundUp(depth * sizeof(UblkIoDescriptor), page);
        // Each queue's array sits at its own stride: the size for the deepest possible queue.
        var stride = RoundUp(UblkConstants.MaxQueueDepth * sizeof(UblkIoDescriptor), page);
        var descriptors = MemoryMapping.Map(characterDevice, (nuint)descriptorBytes, UblkConstants.CommandBufferOffset + ((long)queueId * stride), writable: false);
        var queue = new UblkQueue(queueId, depth, bufferSize, source, readOnly, characterDevice, descriptors, reportError);
        queue._thread.Start();
        return queue;
    }

    /// <summary>Waits until the thread has issued FETCH_REQ for every tag; throws what stopped it from doing so.</summary>
    public void WaitFetched(TimeSpan timeout)
    {
        if (!_fetched.Wait(timeout))
        {
            throw new TimeoutException($"ublk queue {_queueId} did not fetch its {_depth} tags within {timeout.TotalSeconds} s");
        }

        if (_setupFailure is not null)
        {
            throw new IOException($"ublk queue {_queueId} could not fetch its tags: {_setupFailure.Message}", _setupFailure);
        }
    }

    /// <summary>Waits for the thread to end (after STOP_DEV aborted its commands); false on timeout.</summary>
    public bool Join(TimeSpan timeout) => !_thread.IsAlive || _thread.Join(timeout);

    public void Dispose()
    {
        // Only once the thread is gone: it reads the descriptors, and the kernel may copy into the buffers
        // until its ring is closed. A thread that never ended keeps both (a leak, not a crash).
        if (!_thread.IsAlive)
        {
            NativeMemory.AlignedFree(_buffers);
            _descriptors.Dispose();
        }

        _fetched.Dispose();
    }

    private void Serve()
    {
        IoUring? ring = null;
        try
        {
            ring = IoUring.Create((uint)_depth, IoUringConstants.SetupSubmissionEntry128);
            for (var tag = 0; tag < _depth; tag++)
            {
                PrepareIo(ring, UblkConstants.IoFetchRequest, (ushort)tag, 0);
            }

            ring.Submit();
            // The kernel handles FETCH_REQ inline and no request can arrive before START_DEV: an early completion is a refusal.
            if (ring.TryReap(out var refused))
            {
                throw new ErrnoException("ublk FETCH_REQ", $"queue {_queueId} tag {refused.UserData}", -refused.Result);
            }
        }
        catch (Exception e)
        {
            _setupFailure = e;
            ring?.Dispose();
            _fetched.Set();
            return;
        }

        _fetched.Set();
        try
        {
            Loop(ring);
        }
        catch (Exception e)
        {
            _reportError($"ublk queue {_queueId} stopped: {e.Message}");
        }
        finally
        {
            // Closing the ring cancels whatever commands it still holds.
            ring.Dispose();
        }
    }

    private void Loop(IoUring ring)
    {
        var descriptors = (UblkIoDescriptor*)_descriptors.Address;
        var outstanding = _depth;
        while (outstanding > 0)
        {
            ring.Submit(waitFor: 1);
            while (ring.TryReap(out var completion))
            {
                var tag = (ushort)completion.UserData;
                if (completion.Result != UblkConstants.IoResultOk)
                {
                    // UBLK_IO_RES_ABORT: the device is stopping and this tag is done. Anything else is a refused command.
                    outstanding--;
                    if (completion.Result != UblkConstants.IoResultAbort)
                    {
                        _reportError($"ublk queue {_queueId} tag {tag}: command failed with {ErrnoException.Describe(-completion.Result)}");
                    }

                    continue;
                }

                var request = descriptors[tag];
                PrepareIo(ring, UblkConstants.IoCommitAndFetchRequest, tag, Handle(request, tag));
            }
        }
    }

    private int Handle(in UblkIoDescriptor request, ushort tag)
    {
        try
        {
            return UblkRequests.Serve(_source, _readOnly, request, new Span<byte>(_buffers + ((nint)tag * _bufferSize), _bufferSize));
        }
        catch (Exception e)
        {
            _reportError($"ublk op {request.Op} at sector {request.StartSector}+{request.Sectors} failed: {e.Message}");
            return -(int)Errno.EIO;
        }
    }

    private void PrepareIo(IoUring ring, uint command, ushort tag, int result)
    {
        var io = new UblkIoCommand
        {
            QueueId = _queueId,
            Tag = tag,
            Result = result,
            Address = (ulong)(_buffers + ((nint)tag * _bufferSize)),
        };
        ring.PrepareCommand((int)_characterDevice.DangerousGetHandle(), UblkConstants.EncodeIo(command), new ReadOnlySpan<byte>(&io, sizeof(UblkIoCommand)), tag);
    }

    private static int RoundUp(int value, int multiple) => checked((value + multiple - 1) / multiple * multiple);
}
