using CommandLine;
using TurboOci.Cli.Commands.Registry;
using TurboOci.Images.Indexing;
using TurboOci.Images.Packaging;
using TurboOci.Registry;

namespace TurboOci.Cli.Commands.Index;

/// <summary><c>turbooci meta-pull REF --output DIR</c>: the node's side of a meta image, as overlaybd-snapshotter assembles it.</summary>
[Verb("meta-pull", HelpText = "Pull a TurboOCIv1 meta image the way overlaybd-snapshotter consumes it: unpack each meta layer into DIR/<n>-<digest>/, download the original blobs to DIR/blobs/, and write DIR/config.v1.json (base layer, then per layer ext4.fs.meta + target blob + gzip.meta) for `export --config` and the device verbs. The image is untrusted: descriptors, meta layer tars, gzip.meta and ext4.fs.meta are checked against each other and against the original blobs first; a hostile or damaged image exits 2 and writes no config and nothing outside DIR.")]
public sealed class MetaPullCommand : RegistryCommandBase, ICommand
{
    [Value(0, MetaName = "REF", Required = true, HelpText = "The meta image: a reference, or oci:DIR[:tag]. Its original blobs are read from the same repository.")]
    public string Image { get; set; } = "";

    [Option('o', "output", Required = true, HelpText = "Output folder (created); paths in its config.v1.json are relative to it.")]
    public string Output { get; set; } = "";

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var client = CreateClient();
        var config = await new MetaImagePuller(client).PullAsync(ImageStores.Parse(Image, client), Output,
            log: line => Console.Error.WriteLine($"turbooci: {line}"), cancellationToken: cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"{Path.Combine(Output, StackIndexer.ConfigName)}: {config.Lowers.Count} lowers");
        return ExitCodes.Success;
    }
}
