using CommandLine;
using TurboOci.Formats.ZFile;

namespace TurboOci.Cli.Commands.ZFile;

/// <summary><c>turbooci zfile decompress IN OUT</c>: what <c>overlaybd-zfile -x</c> does, tar envelope included.</summary>
[VerbGroup("zfile", ZFileCommandSupport.GroupHelp)]
[Verb("decompress", HelpText = "Decompress a ZFile (bare or in overlaybd's tar envelope), checking every block's CRC-32C.")]
public sealed class ZFileDecompressCommand : ICommand
{
    [Value(0, MetaName = "IN", Required = true, HelpText = "The ZFile, or a tar-wrapped ZFile blob.")]
    public string Input { get; set; } = string.Empty;

    [Value(1, MetaName = "OUT", Required = true, HelpText = "Where to write the decompressed bytes; replaced if it exists, removed on failure.")]
    public string Output { get; set; } = string.Empty;

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var zfile = ZFileCommandSupport.Open(Input);
        var reader = zfile.Reader;
        try
        {
            using var output = new FileStream(Output, FileMode.Create, FileAccess.Write, FileShare.Read, 1);
            using var progress = new ZFileCommandSupport.Progress("decompressing", reader.Size);
            var buffer = new byte[Math.Max(reader.BlockSize, 1 << 20)];
            for (var offset = 0L; offset < reader.Size;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var read = reader.ReadAt(offset, buffer);
                output.Write(buffer, 0, read);
                offset += read;
                progress.Report(offset);
            }
        }
        catch
        {
            File.Delete(Output);
            throw;
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
