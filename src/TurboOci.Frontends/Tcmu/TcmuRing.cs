using System.Runtime.CompilerServices;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tcmu;

/// <summary>One command taken off the ring: its id, a copy of its CDB, and its data buffer in the data area.</summary>
public sealed class TcmuCommand(ushort id, byte[] cdb, IScsiDataBuffer data)
{
    public ushort Id { get; } = id;

    public byte[] Cdb { get; } = cdb;

    public IScsiDataBuffer Data { get; } = data;
}

/// <summary>
/// The TCMU command ring in the shared mapping (linux/target_core_user.h, Documentation/target/tcmu-design):
/// the kernel appends entries at cmd_head (PAD entries fill the end of the ring before a wrap); the handler
/// reads them from its own cursor, copies each command's CDB and iovecs out (the entry may be overwritten by a
/// completion before the command finishes), and completes commands in any order by writing the response over
/// the entry at cmd_tail with the finished command's id, then advancing cmd_tail (what the mailbox's
/// out-of-order-completion capability allows). Without that capability the caller must complete in ring order.
/// Everything the kernel wrote is bounds-checked against the mapping before use.
/// </summary>
public sealed unsafe class TcmuRing
{
    private const int CdbCopyLength = 16;
    private const int IovecSize = 16;

    /// <summary>More iovecs than the largest data area has pages means a corrupt entry.</summary>
    private const uint MaxIovecs = 1u << 18;

    private readonly byte* _base;
    private readonly long _length;
    private readonly uint _ringOffset;
    private readonly uint _ringSize;
    private readonly Lock _completionLock = new();
    private uint _readCursor;

    /// <summary>Wraps the mapping at <paramref name="address"/> of <paramref name="length"/> bytes; reads resume at the mailbox's cmd_tail.</summary>
    public TcmuRing(nint address, long length)
    {
        _base = (byte*)address;
        _length = length;
        if (length < sizeof(TcmuMailbox))
        {
            throw Corrupt("length", 0, $"a mapping of {length} bytes cannot hold the mailbox");
        }

        var mailbox = Mailbox;
        if (mailbox->Version != TcmuConstants.MailboxVersion)
        {
            throw Corrupt("version", 0, $"mailbox version {mailbox->Version}, expected {TcmuConstants.MailboxVersion}");
        }

        _ringOffset = mailbox->CommandRingOffset;
        _ringSize = mailbox->CommandRingSize;
        if (_ringOffset < sizeof(TcmuMailbox) || _ringSize < sizeof(TcmuCommandEntry) || _ringSize % 8 != 0 || (long)_ringOffset + _ringSize > length)
        {
            throw Corrupt("cmdr_off", 4, $"command ring at {_ringOffset}, {_ringSize} bytes, outside a {length}-byte mapping");
        }

        Flags = mailbox->Flags;
        _readCursor = Volatile.Read(ref mailbox->CommandTail);
        if (_readCursor >= _ringSize || Volatile.Read(ref mailbox->CommandHead) >= _ringSize)
        {
            throw Corrupt("cmd_tail", TcmuConstants.AlignSize, $"cmd_tail {_readCursor} or cmd_head outside the {_ringSize}-byte ring");
        }
    }

    /// <summary>The mailbox's capability flags (TCMU_MAILBOX_FLAG_CAP_*).</summary>
    public ushort Flags { get; }

    /// <summary>The kernel accepts completions in any order.</summary>
    public bool OutOfOrderCompletion => (Flags & TcmuConstants.MailboxFlagOutOfOrderCompletion) != 0;

    private TcmuMailbox* Mailbox => (TcmuMailbox*)_base;

    /// <summary>Takes every command the kernel has queued since the last call (PAD and task-management entries are skipped).</summary>
    public List<TcmuCommand> TakeCommands()
    {
        var commands = new List<TcmuCommand>();
        var head = Volatile.Read(ref Mailbox->CommandHead);
        if (head >= _ringSize || head % 8 != 0)
        {
            throw Corrupt("cmd_head", 12, $"cmd_head {head} outside the {_ringSize}-byte ring");
        }

        while (_readCursor != head)
        {
            var entryOffset = _ringOffset + (long)_readCursor;
            var header = (TcmuCommandEntryHeader*)(_base + entryOffset);
            var length = header->Length;
            // An entry never reaches past the end of the ring (a PAD fills it) nor past cmd_head: anything else would
            // send the cursor around the ring forever.
            if (length < sizeof(TcmuCommandEntryHeader) || length > _ringSize - _readCursor || length > Distance(_readCursor, head))
            {
                throw Corrupt("len_op", entryOffset, $"an entry of {length} bytes at ring offset {_readCursor}, cmd_head {head}");
            }

            if (header->Op == TcmuConstants.OpCommand)
            {
                commands.Add(ReadCommand((TcmuCommandEntry*)header, entryOffset, length));
            }

            _readCursor = (_readCursor + length) % _ringSize;
        }

        return commands;
    }

    /// <summary>Writes the completion of <paramref name="command"/> at cmd_tail and advances it; the caller then notifies the kernel.</summary>
    public void Complete(TcmuCommand command, ScsiResult result)
    {
        ArgumentNullException.ThrowIfNull(command);
        lock (_completionLock)
        {
            var mailbox = Mailbox;
            var tail = Volatile.Read(ref mailbox->CommandTail);
            TcmuCommandEntry* entry;
            var head = Volatile.Read(ref mailbox->CommandHead);
            while (true)
            {
                // Only entries the handler has read lie between cmd_tail and cmd_head, one of them this command's.
                var pending = Distance(tail, head);
                entry = (TcmuCommandEntry*)(_base + _ringOffset + tail);
                var length = entry->Header.Length;
                if (pending == 0 || length < sizeof(TcmuCommandEntryHeader) || length > _ringSize - tail || length > pending)
                {
                    throw Corrupt("cmd_tail", _ringOffset + (long)tail, $"no command entry to complete {command.Id} in: {length} bytes at cmd_tail {tail}, cmd_head {head}");
                }

                if (entry->Header.Op == TcmuConstants.OpCommand)
                {
                    break;
                }

                tail = (tail + length) % _ringSize; // PAD and task-management entries need no completion
            }

            entry->Header.CommandId = command.Id;
            entry->Header.UserFlags = 0;
            entry->ResponseScsiStatus = result.Status;
            if (result.Status == ScsiStatus.CheckCondition)
            {
                result.Sense.WriteFixed(new Span<byte>(entry->ResponseSenseBuffer, TcmuConstants.SenseBufferSize));
            }
            else if (result.DataInLength < command.Data.Length && (Flags & TcmuConstants.MailboxFlagReadLength) != 0)
            {
                // A short data-in answer: tell the kernel how much is valid, so the initiator sees the residual.
                entry->Header.UserFlags = TcmuConstants.UserFlagReadLength;
                entry->ResponseReadLength = (uint)result.DataInLength;
            }

            Volatile.Write(ref mailbox->CommandTail, (tail + entry->Header.Length) % _ringSize);
        }
    }

    private TcmuCommand ReadCommand(TcmuCommandEntry* entry, long entryOffset, uint entryLength)
    {
        var iovecCount = entry->RequestIovCount;
        var bidi = entry->RequestIovBidiCount;
        var dif = entry->RequestIovDifCount;
        var totalIovecs = (ulong)iovecCount + bidi + dif;
        if (totalIovecs > MaxIovecs || TcmuCommandEntry.RequestIovecOffset + (totalIovecs * IovecSize) > entryLength)
        {
            throw Corrupt("iov_cnt", entryOffset + 8, $"{iovecCount}+{bidi}+{dif} iovecs in an entry of {entryLength} bytes");
        }

        var cdbOffset = entry->RequestCdbOffset;
        if (cdbOffset < _ringOffset || cdbOffset >= (ulong)_length)
        {
            throw Corrupt("cdb_off", entryOffset + 24, $"CDB at {cdbOffset}, outside the ring");
        }

        var cdb = new ReadOnlySpan<byte>(_base + cdbOffset, (int)Math.Min(CdbCopyLength, (ulong)_length - cdbOffset)).ToArray();
        var segments = new (long Offset, int Length)[iovecCount];
        var iovecs = (byte*)entry + TcmuCommandEntry.RequestIovecOffset;
        long total = 0;
        for (var i = 0; i < iovecCount; i++)
        {
            var iovBase = Unsafe.ReadUnaligned<ulong>(iovecs + (i * IovecSize));
            var iovLength = Unsafe.ReadUnaligned<ulong>(iovecs + (i * IovecSize) + 8);
            // iov_base is an offset into the mapping (the data area), not a pointer.
            if (iovBase > (ulong)_length || iovLength > (ulong)_length - iovBase || iovBase < (ulong)_ringOffset + _ringSize)
            {
                throw Corrupt("iov", entryOffset + TcmuCommandEntry.RequestIovecOffset + (i * IovecSize), $"iovec {i} at {iovBase}, {iovLength} bytes, outside the data area");
            }

            segments[i] = ((long)iovBase, (int)iovLength);
            total += (long)iovLength;
        }

        // The iovecs of one command never overlap, so together they fit in the data area.
        if (total > _length - (_ringOffset + (long)_ringSize))
        {
            throw Corrupt("iov", entryOffset + TcmuCommandEntry.RequestIovecOffset, $"a {total}-byte data buffer");
        }

        return new TcmuCommand(entry->Header.CommandId, cdb, new DataArea(_base, segments, (int)total));
    }

    /// <summary>Bytes from <paramref name="from"/> forward to <paramref name="to"/> around the ring.</summary>
    private uint Distance(uint from, uint to) => (to + _ringSize - from) % _ringSize;

    private static TurboOciFormatException Corrupt(string field, long offset, string problem) => new("tcmu ring", field, offset, problem);

    /// <summary>A command's iovecs into the data area, read and written as one buffer.</summary>
    private sealed class DataArea(byte* mapping, (long Offset, int Length)[] segments, int length) : IScsiDataBuffer
    {
        public int Length { get; } = length;

        public void CopyTo(int offset, Span<byte> destination)
        {
            foreach (var (start, count, at) in Pieces(offset, destination.Length))
            {
                new ReadOnlySpan<byte>(mapping + start, count).CopyTo(destination.Slice(at, count));
            }
        }

        public void CopyFrom(int offset, ReadOnlySpan<byte> source)
        {
            foreach (var (start, count, at) in Pieces(offset, source.Length))
            {
                source.Slice(at, count).CopyTo(new Span<byte>(mapping + start, count));
            }
        }

        /// <summary>The mapping ranges covering bytes [offset, offset+count) of the buffer, with their position in the caller's span.</summary>
        private List<(long Start, int Count, int At)> Pieces(int offset, int count)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Length - offset);
            var pieces = new List<(long, int, int)>();
            var skip = offset;
            var at = 0;
            foreach (var (start, segmentLength) in segments)
            {
                if (at == count)
                {
                    break;
                }

                if (skip >= segmentLength)
                {
                    skip -= segmentLength;
                    continue;
                }

                var take = Math.Min(segmentLength - skip, count - at);
                pieces.Add((start + skip, take, at));
                at += take;
                skip = 0;
            }

            return pieces;
        }
    }
}
