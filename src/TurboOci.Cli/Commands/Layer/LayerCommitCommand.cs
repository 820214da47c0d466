using CommandLine;
using TurboOci.Formats.Lsmt;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci layer commit DATA INDEX OUT</c>: what <c>overlaybd-commit</c> writes, byte for byte.</summary>
[VerbGroup("layer", LayerCommandSupport.GroupHelp)]
[Verb("commit", HelpText = "Commit a writable layer into a read-only layer blob: live data only, merged index, optional ZFile and tar envelope (overlaybd-commit).")]
public sealed class LayerCommitCommand : LayerOutputOptions, ICommand
{
    [Value(0, MetaName = "DATA", Required = true, HelpText = "The writable layer's data file (with --warp: its fs-meta file).")]
    public string Data { get; set; } = string.Empty;

    [Value(1, MetaName = "INDEX", Required = true, HelpText = "The writable layer's index file.")]
    public string Index { get; set; } = string.Empty;

    [Value(2, MetaName = "OUT", Required = true, HelpText = "The committed layer to write; replaced if it exists, removed on failure.")]
    public string Output { get; set; } = string.Empty;

    [Option("parent", HelpText = "The parent uuid to record. Default: the writable layer's parent (none for --warp).")]
    public string? Parent { get; set; }

    [Option('m', "message", HelpText = "Commit message stored in the header's 256-byte user tag (ignored with --warp, as overlaybd).")]
    public string? Message { get; set; }

    [Option("warp", HelpText = "The layer is a TurboOCI warp layer (overlaybd-commit --turboOCI): keep its tar mappings, no index padding.")]
    public bool Warp { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var packaging = LayerCommandSupport.Packaging(Compress, BlockSize, Tar);
        using var layer = Warp ? WritableLayer.OpenWarp(Data, Index, target: null) : WritableLayer.Open(Data, Index);
        var options = new CommitOptions { Uuid = Uuid, ParentUuid = Parent, Message = Message };
        var result = LayerBlobWriter.Write(Output, packaging, stream => layer.Commit(stream, options));
        Console.Error.WriteLine(
            $"{Output}: {result.RealEntries} index entries ({result.IndexEntries} with padding), LSMT {result.Length} bytes, {LayerCommandSupport.Describe(packaging)}, {new FileInfo(Output).Length} bytes written");
        return Task.FromResult(ExitCodes.Success);
    }
}
