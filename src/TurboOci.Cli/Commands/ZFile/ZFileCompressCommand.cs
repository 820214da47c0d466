using CommandLine;
using TurboOci.Formats.ZFile;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.ZFile;

/// <summary><c>turbooci zfile compress IN OUT</c>: what <c>overlaybd-zfile</c> (and with --tar, <c>overlaybd-zfile -t</c>) writes.</summary>
[VerbGroup("zfile", ZFileCommandSupport.GroupHelp)]
[Verb("compress", HelpText = "Compress a file (usually a committed LSMT layer) into a ZFile, byte-compatible with overlaybd-zfile.")]
public sealed class ZFileCompressCommand : ICommand
{
    [Value(0, MetaName = "IN", Required = true, HelpText = "The file to compress.")]
    public string Input { get; set; } = string.Empty;

    [Value(1, MetaName = "OUT", Required = true, HelpText = "The ZFile to write; replaced if it exists, removed if compression fails.")]
    public string Output { get; set; } = string.Empty;

    [Option("algorithm", Default = ZFileAlgorithm.Lz4, HelpText = "Block codec: lz4 (LZ4 raw blocks, overlaybd's default) or zstd (zstd frames, level 3).")]
    public ZFileAlgorithm Algorithm { get; set; } = ZFileAlgorithm.Lz4;

    [Option("block-size", Default = "4K", HelpText = "Uncompressed bytes per block: 4K, 8K, 16K, 32K or 64K (bytes also accepted). 64K refuses incompressible data, because overlaybd cannot read a stored block over 64 KiB.")]
    public string BlockSize { get; set; } = "4K";

    [Option("tar", HelpText = "Wrap the ZFile in overlaybd's one-member tar envelope (member overlaybd.commit, PAX size record), as overlaybd-zfile -t does.")]
    public bool Tar { get; set; }

    [Option("overwrite-header", HelpText = "Rewrite the header at the end with the final index fields (flags 0x1b), as overlaybd-commit -z does. Default: header flags 0x13, as overlaybd-zfile writes.")]
    public bool OverwriteHeader { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = new ZFileWriterOptions { Algorithm = Algorithm, BlockSize = ZFileCommandSupport.ParseBlockSize(BlockSize), OverwriteHeader = OverwriteHeader };
        using var input = FileBlockSource.OpenRead(Input);
        try
        {
            using var output = new FileStream(Output, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
            using var progress = new ZFileCommandSupport.Progress("compressing", input.Size);
            if (Tar)
            {
                TarEnvelope.WriteAround(output, payload =>
                {
                    ZFileWriter.Write(input, payload, options, progress.Report, cancellationToken);
                    return true;
                });
            }
            else
            {
                ZFileWriter.Write(input, output, options, progress.Report, cancellationToken);
            }

            output.Flush(flushToDisk: true);
            Console.Error.WriteLine($"{Input}: {ZFileCommandSupport.Size(input.Size)} -> {ZFileCommandSupport.Size(output.Length)} ({Algorithm}, {options.BlockSize} B blocks{(Tar ? ", tar envelope" : string.Empty)})");
        }
        catch
        {
            File.Delete(Output);
            throw;
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
