using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Ublk;

/// <summary>
/// Serves one ublk request (a slot of the queue's descriptor array) from a <see cref="BlockSource"/>, with the
/// data in the tag's own buffer: the kernel has copied a WRITE's data into it before the request arrived, and
/// copies a READ's data out of it after the commit. The result is what COMMIT_AND_FETCH_REQ reports: the byte
/// count for READ and WRITE, 0 for the others, or -errno.
/// </summary>
internal static class UblkRequests
{
    private const int SectorShift = 9;

    public static int Serve(BlockSource source, bool readOnly, in UblkIoDescriptor request, Span<byte> buffer)
    {
        var op = request.Op;
        if (op == UblkConstants.IoOpFlush)
        {
            if (!readOnly)
            {
                source.Flush();
            }

            return 0;
        }

        if (op is not (UblkConstants.IoOpRead or UblkConstants.IoOpWrite or UblkConstants.IoOpDiscard or UblkConstants.IoOpWriteZeroes))
        {
            return -(int)Errno.EOPNOTSUPP;
        }

        // The kernel keeps requests inside the device and within max_sectors; a descriptor that does not is
        // refused before anything touches the source.
        var length = (long)request.Sectors << SectorShift;
        if (request.StartSector > (ulong)(source.Size >> SectorShift) || length > source.Size - ((long)request.StartSector << SectorShift))
        {
            return -(int)Errno.EINVAL;
        }

        var offset = (long)request.StartSector << SectorShift;
        if (op != UblkConstants.IoOpRead && readOnly)
        {
            return -(int)Errno.EROFS;
        }

        if (op is UblkConstants.IoOpRead or UblkConstants.IoOpWrite && length > buffer.Length)
        {
            return -(int)Errno.EINVAL;
        }

        var data = buffer[..(int)Math.Min(length, buffer.Length)];
        switch (op)
        {
            case UblkConstants.IoOpRead:
                source.ReadExactlyAt(offset, data);
                return data.Length;
            case UblkConstants.IoOpWrite:
                source.WriteAt(offset, data);
                break;
            case UblkConstants.IoOpDiscard:
                BlockRequests.TrimOrIgnore(source, offset, length);
                break;
            default:
                BlockRequests.WriteZeroes(source, offset, length, mayTrim: (request.OpFlags & UblkConstants.IoFlagNoUnmap) == 0);
                break;
        }

        if ((request.OpFlags & UblkConstants.IoFlagFua) != 0)
        {
            source.Flush();
        }

        return op == UblkConstants.IoOpWrite ? data.Length : 0;
    }
}
