using CommandLine;
using TurboOci.Formats.Lsmt;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci layer merge OUT LAYER...</c>: several layers into one, as <c>overlaybd-merge</c>.</summary>
[VerbGroup("layer", LayerCommandSupport.GroupHelp)]
[Verb("merge", HelpText = "Merge a stack of committed layers (lowest first) into one committed layer (overlaybd-merge).")]
public sealed class LayerMergeCommand : LayerOutputOptions, ICommand
{
    [Value(0, MetaName = "OUT", Required = true, HelpText = "The merged layer to write; replaced if it exists, removed on failure.")]
    public string Output { get; set; } = string.Empty;

    [Value(1, MetaName = "LAYER", Min = 1, Required = true, HelpText = "Layer blobs (LSMT, ZFile, tar), lowest first, at most 255.")]
    public IEnumerable<string> Layers { get; set; } = [];

    [Option("parent", HelpText = "The parent uuid to record. Default: the null uuid.")]
    public string? Parent { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var packaging = LayerCommandSupport.Packaging(Compress, BlockSize, Tar, overwriteHeader: false);
        using var stack = LayerBlob.OpenStack(Layers);
        var result = LayerBlobWriter.Write(Output, packaging, stream => LayerWriter.WriteMerged(stream, stack, new CommitOptions { Uuid = Uuid, ParentUuid = Parent }));
        Console.Error.WriteLine(
            $"{Output}: {stack.Layers.Count} layers, {result.RealEntries} index entries, LSMT {result.Length} bytes, {LayerCommandSupport.Describe(packaging)}, {new FileInfo(Output).Length} bytes written");
        return Task.FromResult(ExitCodes.Success);
    }
}
