using CommandLine;
using TurboOci.Formats.ZFile;

namespace TurboOci.Cli.Commands.Layer;

/// <summary>The options of verbs that write a committed layer blob: packaging and the new layer's uuids.</summary>
public abstract class LayerOutputOptions
{
    [Option("compress", HelpText = "Compress into a ZFile with this codec: lz4 or zstd (overlaybd -z [--algorithm]). Default: an uncompressed LSMT file.")]
    public ZFileAlgorithm? Compress { get; set; }

    [Option("block-size", Default = "4K", HelpText = "ZFile block size with --compress: 4K, 8K, 16K, 32K or 64K.")]
    public string BlockSize { get; set; } = "4K";

    [Option("tar", HelpText = "Wrap the compressed layer in overlaybd's tar envelope (overlaybd -z -t): the registry blob shape.")]
    public bool Tar { get; set; }

    [Option("uuid", HelpText = "The new layer's uuid. Default: the null uuid, as overlaybd.")]
    public string? Uuid { get; set; }
}
