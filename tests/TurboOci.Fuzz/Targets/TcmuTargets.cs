using System.Runtime.InteropServices;
using TurboOci.Frontends.Tcmu;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>
/// A SCSI command as the kernel hands it over: the first 16 bytes are the CDB, the rest the data buffer (data-out
/// content, or room for data-in). The disk never throws; a MEDIUM ERROR from a source that cannot fail, data-in
/// longer than the buffer or a write to a read-only disk is a bug.
/// </summary>
public sealed class TcmuScsiTarget : IFuzzTarget
{
    private const int DiskSize = 256 << 10;

    public string Name => "tcmu-scsi";

    public void Run(ReadOnlySpan<byte> input)
    {
        var cdb = input[..Math.Min(16, input.Length)].ToArray();
        var data = input.Length > 16 ? input[16..].ToArray() : [];
        var readOnly = cdb.Length > 15 && (cdb[15] & 0x80) != 0;
        var bytes = new byte[DiskSize];
        var before = readOnly ? bytes.ToArray() : null;
        var disk = new ScsiDisk(new MemoryBlockSource(bytes, writable: true), new ScsiDiskInfo("fuzz", DiskSize, 512, readOnly));
        var result = disk.ExecuteAsync(cdb, new BufferData(data)).AsTask().GetAwaiter().GetResult();
        if (result.Status == ScsiStatus.CheckCondition && result.Sense.Key == ScsiSenseKey.MediumError)
        {
            throw new InvalidOperationException($"a memory source cannot fail, yet the disk answered {result.Sense}");
        }

        if (result.DataInLength < 0 || result.DataInLength > data.Length)
        {
            throw new InvalidOperationException($"{result.DataInLength} bytes of data-in for a {data.Length}-byte buffer");
        }

        if (before is not null && !before.AsSpan().SequenceEqual(bytes))
        {
            throw new InvalidOperationException("a read-only disk changed");
        }
    }

    private sealed class BufferData(byte[] bytes) : IScsiDataBuffer
    {
        public int Length => bytes.Length;

        public void CopyTo(int offset, Span<byte> destination) => bytes.AsSpan(offset, destination.Length).CopyTo(destination);

        public void CopyFrom(int offset, ReadOnlySpan<byte> source) => source.CopyTo(bytes.AsSpan(offset));
    }
}

/// <summary>
/// A TCMU mapping (mailbox, command ring, data area) as bytes: every command the ring yields has its whole data
/// buffer read and is completed. A corrupt ring must be refused with a format error, never followed outside the
/// mapping or around the ring forever.
/// </summary>
public sealed class TcmuRingTarget : IFuzzTarget
{
    public string Name => "tcmu-ring";

    public void Run(ReadOnlySpan<byte> input)
    {
        var mapping = GC.AllocateArray<byte>(input.Length, pinned: true);
        input.CopyTo(mapping);
        var ring = new TcmuRing(Marshal.UnsafeAddrOfPinnedArrayElement(mapping, 0), mapping.Length);
        var commands = ring.TakeCommands();
        foreach (var command in commands)
        {
            var data = new byte[command.Data.Length];
            command.Data.CopyTo(0, data);
            command.Data.CopyFrom(0, data);
        }

        foreach (var command in commands.AsEnumerable().Reverse())
        {
            ring.Complete(command, ScsiResult.Good(command.Data.Length));
        }
    }
}
