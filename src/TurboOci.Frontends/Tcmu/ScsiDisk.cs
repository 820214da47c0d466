using System.Buffers;
using System.Buffers.Binary;
using TurboOci.Storage;

namespace TurboOci.Frontends.Tcmu;

/// <summary>
/// A command's data buffer, scattered in the transport's memory (TCMU: iovecs into the data area): data-in
/// commands write into it, data-out commands read from it. Offsets are within the buffer's <see cref="Length"/>.
/// </summary>
public interface IScsiDataBuffer
{
    int Length { get; }

    void CopyTo(int offset, Span<byte> destination);

    void CopyFrom(int offset, ReadOnlySpan<byte> source);
}

/// <summary>How a command ended: the status, sense on CHECK CONDITION, and how many data-in bytes are valid.</summary>
public readonly record struct ScsiResult(byte Status, ScsiSense Sense, int DataInLength)
{
    public static ScsiResult Good(int dataInLength = 0) => new(ScsiStatus.Good, default, dataInLength);

    public static ScsiResult CheckCondition(ScsiSense sense) => new(ScsiStatus.CheckCondition, sense, 0);
}

/// <summary>
/// A SCSI direct-access disk over a <see cref="BlockSource"/>: executes decoded commands, moving data between
/// the source and the command's buffer. Reads and writes go to the source as they come (commands run
/// concurrently); SYNCHRONIZE CACHE and FUA writes flush it. A read-only disk answers every write with DATA
/// PROTECT; an I/O error of the source becomes MEDIUM ERROR, never a wrong GOOD.
/// </summary>
public sealed class ScsiDisk(BlockSource source, ScsiDiskInfo info)
{
    /// <summary>The largest piece of a read or write staged in one pooled buffer.</summary>
    private const int ChunkSize = 1 << 20;

    public ScsiDiskInfo Info { get; } = info;

    /// <summary>Decodes and executes <paramref name="cdb"/>; never throws for a bad command or an I/O error.</summary>
    public async ValueTask<ScsiResult> ExecuteAsync(ReadOnlyMemory<byte> cdb, IScsiDataBuffer data, CancellationToken cancellationToken = default)
    {
        ScsiCommand command;
        try
        {
            command = ScsiCdb.Parse(cdb.Span);
            return await ExecuteAsync(command, data, cancellationToken).ConfigureAwait(false);
        }
        catch (ScsiCheckConditionException e)
        {
            return ScsiResult.CheckCondition(e.Sense);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var isRead = cdb.Length > 0 && cdb.Span[0] is ScsiOpcode.Read6 or ScsiOpcode.Read10 or ScsiOpcode.Read12 or ScsiOpcode.Read16;
            return ScsiResult.CheckCondition(isRead ? ScsiSense.UnrecoveredReadError : ScsiSense.WriteError);
        }
    }

    private async ValueTask<ScsiResult> ExecuteAsync(ScsiCommand command, IScsiDataBuffer data, CancellationToken cancellationToken)
    {
        switch (command.Kind)
        {
            case ScsiCommandKind.TestUnitReady:
            case ScsiCommandKind.StartStopUnit:
                return ScsiResult.Good();
            case ScsiCommandKind.RequestSense:
                return DataIn(ScsiDiskInfo.NoSense(), command.AllocationLength, data);
            case ScsiCommandKind.Inquiry:
                return DataIn(command.Evpd ? Info.VitalProductData(command.PageCode) : Info.StandardInquiry(), command.AllocationLength, data);
            case ScsiCommandKind.ReadCapacity10:
                return DataIn(Info.ReadCapacity10(), command.AllocationLength, data);
            case ScsiCommandKind.ReadCapacity16:
                return DataIn(Info.ReadCapacity16(), command.AllocationLength, data);
            case ScsiCommandKind.ModeSense:
                return DataIn(Info.ModeSense(command), command.AllocationLength, data);
            case ScsiCommandKind.ReportSupportedOpcodes:
                return DataIn(Info.ReportSupportedOpcodes(command), command.AllocationLength, data);
            case ScsiCommandKind.Read:
                return await ReadAsync(command, data, cancellationToken).ConfigureAwait(false);
            case ScsiCommandKind.Write:
                return await WriteAsync(command, data, cancellationToken).ConfigureAwait(false);
            case ScsiCommandKind.SynchronizeCache:
                CheckRange(command.Lba, command.Blocks);
                if (!Info.ReadOnly)
                {
                    await source.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                return ScsiResult.Good();
            case ScsiCommandKind.Unmap:
                return Unmap(command, data);
            case ScsiCommandKind.WriteSame:
                return await WriteSameAsync(command, data, cancellationToken).ConfigureAwait(false);
            default:
                throw new ScsiCheckConditionException(ScsiSense.InvalidOperationCode, $"{command.Kind} is not implemented");
        }
    }

    private static ScsiResult DataIn(byte[] response, uint allocationLength, IScsiDataBuffer data)
    {
        var length = (int)Math.Min(Math.Min((uint)response.Length, allocationLength), (uint)data.Length);
        data.CopyFrom(0, response.AsSpan(0, length));
        return ScsiResult.Good(length);
    }

    /// <summary>Byte offset and length of a block range, refused when it ends beyond the disk (checked arithmetic).</summary>
    private (long Offset, long Length) CheckRange(ulong lba, uint blocks)
    {
        if (lba > Info.BlockCount || blocks > Info.BlockCount - lba)
        {
            throw new ScsiCheckConditionException(ScsiSense.LbaOutOfRange, $"blocks {lba}+{blocks} end beyond the disk's {Info.BlockCount}");
        }

        return (checked((long)lba * Info.BlockSize), checked((long)blocks * Info.BlockSize));
    }

    private void CheckWritable()
    {
        if (Info.ReadOnly)
        {
            throw new ScsiCheckConditionException(ScsiSense.WriteProtected, "the disk is read-only");
        }
    }

    private (long Offset, int Length) TransferRange(ScsiCommand command, IScsiDataBuffer data)
    {
        var (offset, length) = CheckRange(command.Lba, command.Blocks);
        if (length != data.Length)
        {
            // The kernel sizes the buffer from the CDB itself; a mismatch means the two disagree on the block size.
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"{command.Blocks} blocks of {Info.BlockSize} bytes but a {data.Length}-byte buffer");
        }

        return (offset, (int)length);
    }

    private async ValueTask<ScsiResult> ReadAsync(ScsiCommand command, IScsiDataBuffer data, CancellationToken cancellationToken)
    {
        var (offset, length) = TransferRange(command, data);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(length, ChunkSize));
        try
        {
            for (var done = 0; done < length;)
            {
                var piece = Math.Min(length - done, buffer.Length);
                await ReadExactlyAsync(offset + done, buffer.AsMemory(0, piece), cancellationToken).ConfigureAwait(false);
                data.CopyFrom(done, buffer.AsSpan(0, piece));
                done += piece;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return ScsiResult.Good(length);
    }

    private async ValueTask ReadExactlyAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (!destination.IsEmpty)
        {
            var read = await source.ReadAtAsync(offset, destination, cancellationToken).ConfigureAwait(false);
            if (read <= 0)
            {
                throw new IOException($"the source ended at {offset} inside its size {source.Size}");
            }

            offset += read;
            destination = destination[read..];
        }
    }

    private async ValueTask<ScsiResult> WriteAsync(ScsiCommand command, IScsiDataBuffer data, CancellationToken cancellationToken)
    {
        CheckWritable();
        var (offset, length) = TransferRange(command, data);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(length, 1), ChunkSize));
        try
        {
            for (var done = 0; done < length;)
            {
                var piece = Math.Min(length - done, buffer.Length);
                data.CopyTo(done, buffer.AsSpan(0, piece));
                await source.WriteAtAsync(offset + done, buffer.AsMemory(0, piece), cancellationToken).ConfigureAwait(false);
                done += piece;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (command.Fua)
        {
            await source.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return ScsiResult.Good();
    }

    /// <summary>UNMAP (SBC-3 5.28): the parameter list's block descriptors are trimmed (they read back as zeros).</summary>
    private ScsiResult Unmap(ScsiCommand command, IScsiDataBuffer data)
    {
        CheckWritable();
        var listLength = (int)Math.Min(command.AllocationLength, (uint)data.Length);
        if (listLength == 0)
        {
            return ScsiResult.Good();
        }

        if (listLength < 8)
        {
            throw new ScsiCheckConditionException(ScsiSense.ParameterListLengthError, $"an UNMAP parameter list of {listLength} bytes");
        }

        var list = new byte[listLength];
        data.CopyTo(0, list);
        var descriptorBytes = BinaryPrimitives.ReadUInt16BigEndian(list.AsSpan(2));
        if (descriptorBytes % 16 != 0 || descriptorBytes > listLength - 8)
        {
            throw new ScsiCheckConditionException(ScsiSense.ParameterListLengthError, $"UNMAP block descriptor data of {descriptorBytes} bytes in a {listLength}-byte list");
        }

        if (descriptorBytes / 16 > ScsiDiskInfo.MaxUnmapDescriptors)
        {
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInParameterList, $"{descriptorBytes / 16} UNMAP descriptors");
        }

        // Check every descriptor before trimming any, so a bad list changes nothing.
        var ranges = new List<(long Offset, long Length)>();
        for (var at = 8; at < 8 + descriptorBytes; at += 16)
        {
            var lba = BinaryPrimitives.ReadUInt64BigEndian(list.AsSpan(at));
            var blocks = BinaryPrimitives.ReadUInt32BigEndian(list.AsSpan(at + 8));
            if (blocks > ScsiDiskInfo.MaxUnmapBlocks)
            {
                throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInParameterList, $"UNMAP of {blocks} blocks");
            }

            ranges.Add(CheckRange(lba, blocks));
        }

        foreach (var (offset, length) in ranges.Where(r => r.Length > 0))
        {
            source.Trim(offset, length);
        }

        return ScsiResult.Good();
    }

    /// <summary>WRITE SAME (SBC-3 5.45/5.46): one block repeated; with UNMAP and an all-zero block it becomes a trim.</summary>
    private async ValueTask<ScsiResult> WriteSameAsync(ScsiCommand command, IScsiDataBuffer data, CancellationToken cancellationToken)
    {
        CheckWritable();
        if (command.Blocks > ScsiDiskInfo.MaxUnmapBlocks)
        {
            throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"WRITE SAME of {command.Blocks} blocks");
        }

        var (offset, length) = CheckRange(command.Lba, command.Blocks);
        var block = new byte[Info.BlockSize];
        if (!command.NoDataOutBuffer)
        {
            if (data.Length != Info.BlockSize)
            {
                throw new ScsiCheckConditionException(ScsiSense.InvalidFieldInCdb, $"WRITE SAME with a {data.Length}-byte buffer");
            }

            data.CopyTo(0, block);
        }

        if (command.UnmapBit && !block.AsSpan().ContainsAnyExcept((byte)0))
        {
            source.Trim(offset, length);
            return ScsiResult.Good();
        }

        var repeated = new byte[(int)Math.Min(length, ChunkSize)];
        for (var at = 0; at < repeated.Length; at += block.Length)
        {
            block.CopyTo(repeated, at);
        }

        for (long done = 0; done < length;)
        {
            var piece = (int)Math.Min(length - done, repeated.Length);
            await source.WriteAtAsync(offset + done, repeated.AsMemory(0, piece), cancellationToken).ConfigureAwait(false);
            done += piece;
        }

        return ScsiResult.Good();
    }
}
