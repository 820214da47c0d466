using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace TurboOci.Interop.Linux;

// A minimal io_uring binding (linux/io_uring.h) for ublk: set-up, the mmapped rings, submission and reaping,
// through raw system calls. KernelAbiTests checks every struct and constant here against the kernel header.

/// <summary>struct io_sqring_offsets: where each field of the submission ring lies in its mmap.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoSubmissionRingOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Flags;
    public uint Dropped;
    public uint Array;
    public uint Reserved1;
    public ulong Reserved2;
}

/// <summary>struct io_cqring_offsets: where each field of the completion ring lies in its mmap.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoCompletionRingOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Overflow;
    public uint Completions;
    public uint Flags;
    public uint Reserved1;
    public ulong Reserved2;
}

/// <summary>struct io_uring_params: what io_uring_setup(2) is asked for and answers.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoUringParameters
{
    public uint SubmissionEntries;
    public uint CompletionEntries;
    public uint Flags;
    public uint SubmissionThreadCpu;
    public uint SubmissionThreadIdle;
    public uint Features;
    public uint WorkQueueFd;
    public fixed uint Reserved[3];
    public IoSubmissionRingOffsets SubmissionOffsets;
    public IoCompletionRingOffsets CompletionOffsets;
}

/// <summary>
/// struct io_uring_sqe, its first 64 bytes. The unions are reduced to the member we use: for
/// IORING_OP_URING_CMD, <see cref="Offset"/> holds cmd_op in its low 32 bits, and the command's payload
/// starts at <see cref="IoUring.CommandOffset"/> (cmd[], 16 bytes, or 80 with IORING_SETUP_SQE128).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoUringSubmissionEntry
{
    public byte Opcode;
    public byte Flags;
    public ushort IoPriority;
    public int Fd;
    public ulong Offset;
    public ulong Address;
    public uint Length;
    public uint OperationFlags;
    public ulong UserData;
    public ushort BufferIndex;
    public ushort Personality;
    public int SpliceFdIn;
    public ulong Address3;
    public ulong Pad2;
}

/// <summary>struct io_uring_cqe: one completion (16 bytes without IORING_SETUP_CQE32).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoUringCompletionEntry
{
    public ulong UserData;
    public int Result;
    public uint Flags;
}

/// <summary>The io_uring constants we use.</summary>
public static class IoUringConstants
{
    /// <summary>__NR_io_uring_setup: the same on x86-64 and arm64 (the unified syscall table, 5.1 on).</summary>
    public const long SystemCallSetup = 425;

    /// <summary>__NR_io_uring_enter.</summary>
    public const long SystemCallEnter = 426;

    public const byte OpNop = 0;
    public const byte OpRead = 22;
    public const byte OpUringCommand = 46;

    public const uint SetupSubmissionEntry128 = 1u << 10;

    public const uint EnterGetEvents = 1u << 0;

    public const uint FeatureSingleMmap = 1u << 0;

    public const long OffsetSubmissionRing = 0;
    public const long OffsetCompletionRing = 0x8000000;
    public const long OffsetSubmissionEntries = 0x10000000;
}

/// <summary>
/// One io_uring instance: the ring file descriptor, the shared submission and completion rings and the
/// submission entries, all mmapped. Not thread-safe: one thread prepares, submits and reaps. That is also
/// what ublk wants, since the kernel ties a queue's commands to the task that issued them.
/// </summary>
public sealed unsafe class IoUring : IDisposable
{
    /// <summary>Where a URING_CMD's payload (sqe->cmd) starts in the submission entry.</summary>
    public const int CommandOffset = 48;

    private readonly SafeFileHandle _ring;
    private readonly List<MemoryMapping> _mappings = [];
    private readonly nint _entries;
    private readonly uint* _submissionHead;
    private readonly uint* _submissionTail;
    private readonly uint _submissionMask;
    private readonly uint* _submissionArray;
    private readonly uint* _completionHead;
    private readonly uint* _completionTail;
    private readonly uint _completionMask;
    private readonly IoUringCompletionEntry* _completions;
    private uint _localTail;
    private bool _disposed;

    private IoUring(SafeFileHandle ring, in IoUringParameters parameters, int entrySize)
    {
        _ring = ring;
        EntrySize = entrySize;
        SubmissionEntries = parameters.SubmissionEntries;
        ref readonly var sq = ref parameters.SubmissionOffsets;
        ref readonly var cq = ref parameters.CompletionOffsets;
        var submissionLength = checked((nuint)(sq.Array + (parameters.SubmissionEntries * sizeof(uint))));
        var completionLength = checked((nuint)(cq.Completions + (parameters.CompletionEntries * (uint)sizeof(IoUringCompletionEntry))));
        nint submissionRing, completionRing;
        try
        {
            // With IORING_FEAT_SINGLE_MMAP (5.4 on) one mapping holds both rings.
            if ((parameters.Features & IoUringConstants.FeatureSingleMmap) != 0)
            {
                submissionRing = completionRing = Map(Math.Max(submissionLength, completionLength), IoUringConstants.OffsetSubmissionRing);
            }
            else
            {
                submissionRing = Map(submissionLength, IoUringConstants.OffsetSubmissionRing);
                completionRing = Map(completionLength, IoUringConstants.OffsetCompletionRing);
            }

            _entries = Map(checked((nuint)(parameters.SubmissionEntries * (uint)entrySize)), IoUringConstants.OffsetSubmissionEntries);
        }
        catch
        {
            _mappings.ForEach(m => m.Dispose());
            throw;
        }

        var sqBase = (byte*)submissionRing;
        _submissionHead = (uint*)(sqBase + sq.Head);
        _submissionTail = (uint*)(sqBase + sq.Tail);
        _submissionMask = *(uint*)(sqBase + sq.RingMask);
        _submissionArray = (uint*)(sqBase + sq.Array);
        var cqBase = (byte*)completionRing;
        _completionHead = (uint*)(cqBase + cq.Head);
        _completionTail = (uint*)(cqBase + cq.Tail);
        _completionMask = *(uint*)(cqBase + cq.RingMask);
        _completions = (IoUringCompletionEntry*)(cqBase + cq.Completions);
        _localTail = *_submissionTail;
    }

    /// <summary>64, or 128 for a ring set up with <see cref="IoUringConstants.SetupSubmissionEntry128"/>.</summary>
    public int EntrySize { get; }

    /// <summary>How many submissions the ring holds (the kernel rounds the request up to a power of two).</summary>
    public uint SubmissionEntries { get; }

    /// <summary>Bytes available for a URING_CMD payload: 16, or 80 with 128-byte entries.</summary>
    public int CommandCapacity => EntrySize - CommandOffset;

    /// <summary>io_uring_setup(2) with <paramref name="entries"/> submission entries and <paramref name="flags"/> (IORING_SETUP_*).</summary>
    public static IoUring Create(uint entries, uint flags = 0)
    {
        var parameters = new IoUringParameters { Flags = flags };
        var fd = (int)Libc.Syscall(IoUringConstants.SystemCallSetup, entries, (long)&parameters, 0, 0, 0, 0);
        if (fd < 0)
        {
            throw new ErrnoException("io_uring_setup", $"{entries} entries, flags 0x{flags:x}", Marshal.GetLastPInvokeError());
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var entrySize = (flags & IoUringConstants.SetupSubmissionEntry128) != 0 ? 128 : 64;
            return new IoUring(handle, parameters, entrySize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Submissions prepared but not yet taken by the kernel.</summary>
    public uint Pending => _localTail - Volatile.Read(ref *_submissionHead);

    /// <summary>
    /// The next free submission entry, zeroed (all of its <see cref="EntrySize"/> bytes). Throws when the
    /// submission ring is full: submit first.
    /// </summary>
    public ref IoUringSubmissionEntry Next()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Pending >= SubmissionEntries)
        {
            throw new InvalidOperationException($"the io_uring submission ring is full ({SubmissionEntries} entries): submit first");
        }

        var index = _localTail & _submissionMask;
        var entry = (byte*)_entries + ((nuint)index * (nuint)EntrySize);
        new Span<byte>(entry, EntrySize).Clear();
        _submissionArray[index] = index;
        _localTail++;
        return ref *(IoUringSubmissionEntry*)entry;
    }

    /// <summary>Prepares an IORING_OP_URING_CMD for <paramref name="fd"/>: <paramref name="commandOp"/> and its payload.</summary>
    public void PrepareCommand(int fd, uint commandOp, ReadOnlySpan<byte> payload, ulong userData)
    {
        if (payload.Length > CommandCapacity)
        {
            throw new ArgumentException($"a {payload.Length}-byte command does not fit a {EntrySize}-byte submission entry", nameof(payload));
        }

        ref var entry = ref Next();
        entry.Opcode = IoUringConstants.OpUringCommand;
        entry.Fd = fd;
        entry.Offset = commandOp; // cmd_op is the low half of the 64-bit union (little-endian)
        entry.UserData = userData;
        fixed (IoUringSubmissionEntry* pointer = &entry)
        {
            payload.CopyTo(new Span<byte>((byte*)pointer + CommandOffset, CommandCapacity));
        }
    }

    /// <summary>
    /// Publishes the prepared entries and enters the kernel: submits them, and with <paramref name="waitFor"/>
    /// &gt; 0 waits until that many completions are ready (running the task work the kernel queued for this
    /// thread). Interrupted waits are resumed. Returns how many entries the kernel took.
    /// </summary>
    public int Submit(uint waitFor = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Release: the entries and array slots written above must be visible before the new tail.
        Volatile.Write(ref *_submissionTail, _localTail);
        var toSubmit = Pending;
        var flags = waitFor > 0 ? IoUringConstants.EnterGetEvents : 0;
        while (true)
        {
            var result = Libc.Syscall(IoUringConstants.SystemCallEnter, (long)_ring.DangerousGetHandle(), toSubmit, waitFor, flags, 0, 0);
            if (result >= 0)
            {
                return (int)result;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != (int)Errno.EINTR)
            {
                throw new ErrnoException("io_uring_enter", null, errno);
            }

            toSubmit = Pending;
        }
    }

    /// <summary>Takes the oldest completion, if there is one.</summary>
    public bool TryReap(out IoUringCompletionEntry completion)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var head = *_completionHead;
        // Acquire: the entry's contents are valid once the kernel's tail covers it.
        if (head == Volatile.Read(ref *_completionTail))
        {
            completion = default;
            return false;
        }

        completion = _completions[head & _completionMask];
        Volatile.Write(ref *_completionHead, head + 1);
        return true;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _mappings.ForEach(m => m.Dispose());
        // Closing the ring cancels whatever it still has in flight.
        _ring.Dispose();
    }

    private nint Map(nuint length, long offset)
    {
        var mapping = MemoryMapping.Map(_ring, length, offset, writable: true);
        _mappings.Add(mapping);
        return mapping.Address;
    }
}
