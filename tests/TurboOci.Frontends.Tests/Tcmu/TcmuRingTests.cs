using System.Runtime.InteropServices;
using TurboOci.Frontends.Tcmu;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tests.Tcmu;

/// <summary>
/// The ring protocol against a fake kernel that lays out the mapping exactly as target_core_user does (mailbox,
/// command entries with iovecs and the CDB inside them, PAD before a wrap, data area offsets in iov_base) and
/// reaps completions from cmd_tail as tcmu_handle_completions does.
/// </summary>
public sealed class TcmuRingTests
{
    private const int BlockSize = 512;

    [Fact]
    public async Task CommandsAreCopiedOutAndCompletedOutOfOrderWithTheirIds()
    {
        var kernel = new FakeKernel(ringSize: 4096);
        var bytes = new byte[1 << 20];
        new Random(3).NextBytes(bytes);
        var disk = new ScsiDisk(new MemoryBlockSource(bytes), new ScsiDiskInfo("ring", bytes.Length, BlockSize, readOnly: true));

        // READ(10) of 8 blocks into two iovecs of unequal size, then an INQUIRY; the iovecs are offsets into the data area.
        kernel.Queue(7, Cdbs.Read10(3, 8), (0, 1536), (8192, 2560));
        kernel.Queue(9, Cdbs.Inquiry(0x80), (16384, 255));
        var ring = new TcmuRing(kernel.Address, kernel.Length);
        Assert.True(ring.OutOfOrderCompletion);
        var commands = ring.TakeCommands();
        Assert.Equal(new ushort[] { 7, 9 }, commands.Select(c => c.Id));
        Assert.Empty(ring.TakeCommands());

        // The INQUIRY finishes first: its completion goes into the first entry's slot, with its own id.
        ring.Complete(commands[1], await disk.ExecuteAsync(commands[1].Cdb, commands[1].Data));
        ring.Complete(commands[0], await disk.ExecuteAsync(commands[0].Cdb, commands[0].Data));
        var completions = kernel.Reap();
        Assert.Equal(new ushort[] { 9, 7 }, completions.Select(c => c.Id));
        Assert.All(completions, c => Assert.Equal(ScsiStatus.Good, c.Status));
        // The INQUIRY answered 24 of the 255 bytes: READ_LEN says so. The READ filled its whole buffer: no flag.
        Assert.Equal((TcmuConstants.UserFlagReadLength, 4u + 20u), (completions[0].UserFlags, completions[0].ReadLength));
        Assert.Equal(0, completions[1].UserFlags);
        Assert.Equal(bytes.AsSpan(3 * BlockSize, 1536).ToArray(), kernel.Data(0, 1536));
        Assert.Equal(bytes.AsSpan((3 * BlockSize) + 1536, 2560).ToArray(), kernel.Data(8192, 2560));
        Assert.Equal(disk.Info.Serial, System.Text.Encoding.ASCII.GetString(kernel.Data(16384 + 4, 20)));
    }

    [Fact]
    public async Task APadBeforeTheWrapIsSkippedWhenReadingAndWhenCompleting()
    {
        var kernel = new FakeKernel(ringSize: 512);
        var bytes = new byte[64 << 10];
        var disk = new ScsiDisk(new MemoryBlockSource(bytes, writable: true), new ScsiDiskInfo("wrap", bytes.Length, BlockSize, readOnly: false));
        var ring = new TcmuRing(kernel.Address, kernel.Length);
        var seen = new List<ushort>();
        for (ushort id = 1; id <= 40; id++)
        {
            // Entries of 80 bytes in a 512-byte ring: the kernel pads the end and wraps every few commands.
            kernel.Fill(id * 100, BlockSize, (byte)id);
            kernel.Queue(id, Cdbs.Write10(id, 1), (id * 100, BlockSize));
            foreach (var command in ring.TakeCommands())
            {
                ring.Complete(command, await disk.ExecuteAsync(command.Cdb, command.Data));
                seen.Add(command.Id);
            }

            Assert.Equal(id, Assert.Single(kernel.Reap()).Id);
        }

        Assert.True(kernel.Pads > 5, $"{kernel.Pads} PAD entries");
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (ushort)i), seen);
        for (var id = 1; id <= 40; id++)
        {
            Assert.True(bytes.AsSpan(id * BlockSize, BlockSize).IndexOfAnyExcept((byte)id) < 0, $"block {id}");
        }
    }

    [Fact]
    public void ACheckConditionCarriesFixedSenseInTheResponse()
    {
        var kernel = new FakeKernel(ringSize: 4096);
        kernel.Queue(3, [0x04, 0, 0, 0, 0, 0]);
        var ring = new TcmuRing(kernel.Address, kernel.Length);
        ring.Complete(Assert.Single(ring.TakeCommands()), ScsiResult.CheckCondition(ScsiSense.InvalidOperationCode));
        var completion = Assert.Single(kernel.Reap());
        Assert.Equal((ScsiStatus.CheckCondition, (byte)0x70, (byte)0x05, (byte)0x20), (completion.Status, completion.Sense[0], completion.Sense[2], completion.Sense[12]));
    }

    public static TheoryData<string> Corruptions() => new() { "zero-length entry", "entry past the ring end", "iovec outside the mapping", "iovec inside the ring", "too many iovecs", "cdb outside", "head outside" };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void ARingTheKernelCouldNotHaveWrittenIsRefusedNotFollowed(string corruption)
    {
        var kernel = new FakeKernel(ringSize: 4096);
        var entry = kernel.Queue(1, Cdbs.Read10(0, 1), (0, BlockSize));
        var ring = new TcmuRing(kernel.Address, kernel.Length);
        switch (corruption)
        {
            case "zero-length entry": kernel.Write<uint>(entry, TcmuConstants.OpCommand); break;
            case "entry past the ring end": kernel.Write<uint>(entry, 8192 | TcmuConstants.OpCommand); break;
            case "iovec outside the mapping": kernel.Write(entry + TcmuCommandEntry.RequestIovecOffset, (ulong)kernel.Length); break;
            case "iovec inside the ring": kernel.Write(entry + TcmuCommandEntry.RequestIovecOffset, (ulong)FakeKernel.RingOffset); break;
            case "too many iovecs": kernel.Write(entry + 8, 1000u); break;
            case "cdb outside": kernel.Write(entry + 24, (ulong)kernel.Length + 5); break;
            case "head outside": kernel.Write(12, 5000u); break;
        }

        Assert.Throws<TurboOciFormatException>(() => ring.TakeCommands());
    }

    [Fact]
    public void AMailboxOfAnotherVersionOrARingOutsideTheMappingIsRefused()
    {
        var kernel = new FakeKernel(ringSize: 4096);
        kernel.Write<ushort>(0, 3);
        Assert.Throws<TurboOciFormatException>(() => new TcmuRing(kernel.Address, kernel.Length));
        kernel.Write<ushort>(0, TcmuConstants.MailboxVersion);
        kernel.Write(8, (uint)kernel.Length);
        Assert.Throws<TurboOciFormatException>(() => new TcmuRing(kernel.Address, kernel.Length));
    }

    /// <summary>The kernel's side of the mapping: it queues entries at cmd_head and reaps completions up to cmd_tail.</summary>
    private sealed class FakeKernel
    {
        public const int RingOffset = 128;
        private const int HeadOffset = 12;
        private const int TailOffset = TcmuConstants.AlignSize;
        private const int DataAreaSize = 64 << 10;
        private readonly int _ringSize;
        private readonly byte[] _memory;
        private uint _lastCleaned;

        public FakeKernel(int ringSize)
        {
            _ringSize = ringSize;
            // Pinned, so the ring can hold its address like the uio mapping's.
            _memory = GC.AllocateArray<byte>(RingOffset + ringSize + DataAreaSize, pinned: true);
            Write<ushort>(0, TcmuConstants.MailboxVersion);
            Write<ushort>(2, TcmuConstants.MailboxFlagOutOfOrderCompletion | TcmuConstants.MailboxFlagReadLength);
            Write<uint>(4, RingOffset);
            Write(8, (uint)ringSize);
        }

        public nint Address => Marshal.UnsafeAddrOfPinnedArrayElement(_memory, 0);

        public long Length => _memory.Length;

        public int Pads { get; private set; }

        private int DataArea => RingOffset + _ringSize;

        /// <summary>Queues a command at cmd_head (after a PAD to the ring's end when it does not fit); returns the entry's offset in the mapping.</summary>
        public int Queue(ushort id, byte[] cdb, params (int DataOffset, int Length)[] iovecs)
        {
            var size = (TcmuCommandEntry.RequestIovecOffset + (16 * iovecs.Length) + cdb.Length + 7) & ~7;
            var head = (int)Read<uint>(HeadOffset);
            if (head + size > _ringSize)
            {
                Write(RingOffset + head, (uint)(_ringSize - head) | TcmuConstants.OpPad);
                Pads++;
                head = 0;
            }

            var entry = RingOffset + head;
            _memory.AsSpan(entry, size).Clear();
            Write(entry, (uint)size | TcmuConstants.OpCommand);
            Write(entry + 4, id);
            Write(entry + 8, (uint)iovecs.Length);
            var cdbOffset = entry + TcmuCommandEntry.RequestIovecOffset + (16 * iovecs.Length);
            Write(entry + 24, (ulong)cdbOffset);
            for (var i = 0; i < iovecs.Length; i++)
            {
                Write(entry + TcmuCommandEntry.RequestIovecOffset + (16 * i), (ulong)(DataArea + iovecs[i].DataOffset));
                Write(entry + TcmuCommandEntry.RequestIovecOffset + (16 * i) + 8, (ulong)iovecs[i].Length);
            }

            cdb.CopyTo(_memory, cdbOffset);
            Write(HeadOffset, (uint)((head + size) % _ringSize));
            return entry;
        }

        /// <summary>Every completion from the last reaped position to cmd_tail, PADs skipped (as tcmu_handle_completions).</summary>
        public List<(ushort Id, byte Status, byte UserFlags, uint ReadLength, byte[] Sense)> Reap()
        {
            var completions = new List<(ushort, byte, byte, uint, byte[])>();
            var tail = Read<uint>(TailOffset);
            while (_lastCleaned != tail)
            {
                var entry = RingOffset + (int)_lastCleaned;
                var lengthAndOp = Read<uint>(entry);
                if ((lengthAndOp & TcmuConstants.OpMask) == TcmuConstants.OpCommand)
                {
                    completions.Add((Read<ushort>(entry + 4), _memory[entry + 8], _memory[entry + 7], Read<uint>(entry + 12),
                        _memory.AsSpan(entry + 16, TcmuConstants.SenseBufferSize).ToArray()));
                }

                _lastCleaned = (_lastCleaned + (lengthAndOp & ~TcmuConstants.OpMask)) % (uint)_ringSize;
            }

            return completions;
        }

        public byte[] Data(int offset, int length) => _memory.AsSpan(DataArea + offset, length).ToArray();

        public void Fill(int offset, int length, byte value) => _memory.AsSpan(DataArea + offset, length).Fill(value);

        public void Write<T>(int offset, T value)
            where T : unmanaged => MemoryMarshal.Write(_memory.AsSpan(offset), in value);

        private T Read<T>(int offset)
            where T : unmanaged => MemoryMarshal.Read<T>(_memory.AsSpan(offset));
    }
}
