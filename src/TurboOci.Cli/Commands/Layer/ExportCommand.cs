using CommandLine;
using TurboOci.Cli.Commands.ZFile;
using TurboOci.Formats.Lsmt;
using TurboOci.Images;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci export OUT.img LAYER...</c>: the merged virtual disk of a stack as a sparse raw image.</summary>
[Verb("export", HelpText = "Write the virtual disk of a layer stack (lowest first) to a sparse raw image that e2fsck and mount -o loop can read; holes and zero blocks are not written.")]
public sealed class ExportCommand : ICommand
{
    [Value(0, MetaName = "OUT.img", Required = true, HelpText = "The raw image to write; replaced if it exists, removed on failure.")]
    public string Output { get; set; } = string.Empty;

    [Value(1, MetaName = "LAYER", HelpText = "Layer blobs (LSMT, ZFile, tar-wrapped), lowest first, at most 255. Not with --config.")]
    public IEnumerable<string> Layers { get; set; } = [];

    [Option("config", HelpText = "Export the stack an overlaybd config.v1.json describes (such as the one `turbooci index` writes) instead of LAYER files: TurboOCI layers read file data from their original blobs, through the gzip index when they have one.")]
    public string? Config { get; set; }

    [Option("overlaybd-config", HelpText = "With --config: overlaybd's global config (cacheConfig, credentialConfig, p2pConfig, certConfig, userAgent) for layers read from the registry named by the stack's repoBlobUrl. Default: /etc/overlaybd/overlaybd.json when it exists.")]
    public string? OverlaybdConfigPath { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var layers = Layers.ToList();
        if ((Config is null) == (layers.Count == 0))
        {
            throw new ArgumentException("give either LAYER files or --config CONFIG, not both and not neither");
        }

        using var registry = new NodeRegistry(OverlaybdConfigPath);
        using BlockSource stack = Config is null ? LayerBlob.OpenStack(layers) : registry.Open(ImageConfig.Load(Config));
        long written;
        try
        {
            using var image = FileBlockSource.OpenReadWrite(Output, size: 0);
            image.SetSize(stack.Size);
            using (var progress = new ZFileCommandSupport.Progress("exporting", stack.Size))
            {
                written = BlockExtents.CopyData(stack, image, progress: progress.Report, cancellationToken: cancellationToken);
            }

            image.Flush();
        }
        catch
        {
            File.Delete(Output);
            throw;
        }

        Console.Error.WriteLine($"{Output}: {ZFileCommandSupport.Size(stack.Size)} virtual disk, {ZFileCommandSupport.Size(written)} of data written");
        return Task.FromResult(ExitCodes.Success);
    }
}
