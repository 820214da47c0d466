using CommandLine;
using TurboOci.Formats.Lsmt;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci layer create DATA INDEX --size N</c>: an empty writable layer, as <c>overlaybd-create</c> makes one.</summary>
[VerbGroup("layer", LayerCommandSupport.GroupHelp)]
[Verb("create", HelpText = "Create an empty writable LSMT layer: a data file and an index file (overlaybd-create).")]
public sealed class LayerCreateCommand : ICommand
{
    [Value(0, MetaName = "DATA", Required = true, HelpText = "The data file to create (with --warp: the headerless fs-meta file). Must not exist.")]
    public string Data { get; set; } = string.Empty;

    [Value(1, MetaName = "INDEX", Required = true, HelpText = "The index file to create. Must not exist.")]
    public string Index { get; set; } = string.Empty;

    [Option("size", Required = true, HelpText = "Virtual disk size: bytes or a binary unit (1G, 64GiB). A multiple of 512.")]
    public string Size { get; set; } = string.Empty;

    [Option("parent", HelpText = "The uuid of the layer this one will sit on (recorded as parent_uuid). Default: none.")]
    public string? Parent { get; set; }

    [Option("warp", HelpText = "Create a TurboOCI warp layer (overlaybd-create --turboOCI): metadata in DATA at its own offset, data mapped to the original tar.")]
    public bool Warp { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var size = LayerCommandSupport.ParseSize(Size, "--size");
        using var layer = Warp
            ? WritableLayer.CreateWarp(Data, Index, size, target: null, Parent)
            : WritableLayer.Create(Data, Index, size, Parent);
        Console.WriteLine($"created {(Warp ? "warp" : "writable")} layer {layer.Uuid}: {size} bytes virtual, parent {layer.ParentUuid}");
        return Task.FromResult(ExitCodes.Success);
    }
}
