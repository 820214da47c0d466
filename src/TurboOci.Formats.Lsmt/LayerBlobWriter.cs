using TurboOci.Formats.ZFile;

namespace TurboOci.Formats.Lsmt;

/// <summary>How a committed layer is packaged: bare LSMT, ZFile-compressed, and optionally in a tar envelope.</summary>
public sealed record BlobPackaging
{
    /// <summary>Null writes a bare LSMT file; otherwise the ZFile algorithm.</summary>
    public ZFileAlgorithm? Compression { get; init; }

    /// <summary>ZFile block size (4–64 KiB, a power of two).</summary>
    public int BlockSize { get; init; } = 4096;

    /// <summary>Wrap the result in overlaybd's tar envelope (overlaybd-commit -z -t).</summary>
    public bool Tar { get; init; }

    /// <summary>Rewrite the ZFile header at the end (flags 0x1b) as overlaybd-commit does; overlaybd-merge does not (0x13).</summary>
    public bool OverwriteHeader { get; init; } = true;
}

/// <summary>
/// Writes a layer produced as a stream of LSMT bytes into its final blob shape, as overlaybd-commit does:
/// <c>-z</c> streams through a ZFile writer with the header overwritten at the end (flags 0x1b), and <c>-t</c>
/// wraps the ZFile in the tar envelope.
/// </summary>
public static class LayerBlobWriter
{
    /// <summary>
    /// Writes <paramref name="outputPath"/>; <paramref name="writeLsmt"/> writes the LSMT bytes to the stream it is given.
    /// The output is removed if anything fails.
    /// </summary>
    public static TResult Write<TResult>(string outputPath, BlobPackaging packaging, Func<Stream, TResult> writeLsmt)
    {
        ArgumentNullException.ThrowIfNull(packaging);
        ArgumentNullException.ThrowIfNull(writeLsmt);
        try
        {
            using var output = new FileStream(outputPath, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
            var result = packaging.Tar
                ? TarEnvelope.WriteAround(output, payload => WritePayload(payload, packaging, writeLsmt))
                : WritePayload(output, packaging, writeLsmt);
            output.Flush(flushToDisk: true);
            return result;
        }
        catch
        {
            File.Delete(outputPath);
            throw;
        }
    }

    private static TResult WritePayload<TResult>(Stream output, BlobPackaging packaging, Func<Stream, TResult> writeLsmt)
    {
        if (packaging.Compression is not { } algorithm)
        {
            return writeLsmt(output);
        }

        var options = new ZFileWriterOptions { Algorithm = algorithm, BlockSize = packaging.BlockSize, OverwriteHeader = packaging.OverwriteHeader };
        using var zfile = ZFileWriter.CreateStream(output, options, leaveOpen: true);
        var result = writeLsmt(zfile);
        zfile.Complete();
        return result;
    }
}
