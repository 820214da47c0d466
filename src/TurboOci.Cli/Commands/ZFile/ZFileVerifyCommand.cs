using CommandLine;

namespace TurboOci.Cli.Commands.ZFile;

/// <summary><c>turbooci zfile verify IN</c>: header digest, jump-table CRC, every block's CRC-32C and decodability.</summary>
[VerbGroup("zfile", ZFileCommandSupport.GroupHelp)]
[Verb("verify", HelpText = "Check a ZFile (bare or tar-wrapped): header/trailer digests, jump table CRC, and every block's CRC-32C and decompression. Exit 2 if damaged.")]
public sealed class ZFileVerifyCommand : ICommand
{
    [Value(0, MetaName = "IN", Required = true, HelpText = "The ZFile, or a tar-wrapped ZFile blob.")]
    public string Input { get; set; } = string.Empty;

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var zfile = ZFileCommandSupport.Open(Input);
        var reader = zfile.Reader;
        using (var progress = new ZFileCommandSupport.Progress("verifying", reader.Size))
        {
            reader.VerifyAllBlocks(progress.Report, cancellationToken);
        }

        var header = reader.Header;
        Console.WriteLine($"{Input}: ok");
        if (zfile.TarPayloadOffset is { } start)
        {
            Console.WriteLine($"  tar envelope     payload at {start}, {reader.CompressedSize} bytes");
        }

        Console.WriteLine($"  algorithm        {reader.Algorithm}, {reader.BlockSize}-byte blocks, {reader.BlockCount} blocks");
        Console.WriteLine($"  size             {reader.Size} bytes uncompressed, {reader.CompressedSize} compressed");
        Console.WriteLine($"  header           flags 0x{(ulong)header.Flags:x}{(header.IsHeaderOverwrite ? " (overwritten with the index fields)" : string.Empty)}, digest {(header.IsDigestEnabled ? "checked" : "absent (legacy writer)")}");
        if (reader.Trailer is { } trailer)
        {
            Console.WriteLine($"  trailer          flags 0x{(ulong)trailer.Flags:x}, jump table at {trailer.IndexOffset}");
        }

        Console.WriteLine($"  block checksums  {(reader.HasBlockChecksums ? "CRC-32C on every block, all verified" : "none stored (blocks decoded only)")}");
        return Task.FromResult(ExitCodes.Success);
    }
}
