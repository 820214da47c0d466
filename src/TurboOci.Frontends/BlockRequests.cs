using TurboOci.Storage;

namespace TurboOci.Frontends;

/// <summary>The block requests every frontend maps the same way onto a <see cref="BlockSource"/> (NBD, ublk).</summary>
internal static class BlockRequests
{
    /// <summary>Trim is advisory: a source that cannot trim keeps its data, and the client is told success.</summary>
    public static void TrimOrIgnore(BlockSource source, long offset, long length)
    {
        try
        {
            source.Trim(offset, length);
        }
        catch (NotSupportedException)
        {
        }
    }

    /// <summary>WRITE_ZEROES: a trim when holes are allowed and the source can trim (trimmed ranges read as zeros), else written zeros.</summary>
    public static void WriteZeroes(BlockSource source, long offset, long length, bool mayTrim)
    {
        if (mayTrim)
        {
            try
            {
                source.Trim(offset, length);
                return;
            }
            catch (NotSupportedException)
            {
            }
        }

        var zeros = new byte[(int)Math.Min(length, 1 << 20)];
        for (var done = 0L; done < length;)
        {
            var chunk = (int)Math.Min(zeros.Length, length - done);
            source.WriteAt(offset + done, zeros.AsSpan(0, chunk));
            done += chunk;
        }
    }
}
