using CommandLine;
using TurboOci.Registry;

namespace TurboOci.Cli.Commands.Registry;

/// <summary><c>turbooci image copy SRC DST</c>: registry or OCI layout on either side, only missing blobs move.</summary>
[VerbGroup("image", RegistryCommandSupport.ImageGroupHelp)]
[Verb("copy", HelpText = "Copy an image (every platform of an index) between registries and OCI layouts; only blobs the destination lacks are moved, same-registry blobs are mounted.")]
public sealed class ImageCopyCommand : RegistryCommandBase, ICommand
{
    [Value(0, MetaName = "SRC", Required = true, HelpText = "Source: an image reference, or oci:DIR[:tag] for an OCI image layout.")]
    public string Source { get; set; } = "";

    [Value(1, MetaName = "DST", Required = true, HelpText = "Destination: an image reference (tag or digest), or oci:DIR[:tag] (created if missing; tag defaults to latest).")]
    public string Destination { get; set; } = "";

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var client = CreateClient();
        var copier = new ImageCopier(Console.IsErrorRedirected ? null : line => Console.Error.WriteLine($"turbooci: {line}"));
        var result = await copier.CopyAsync(ImageStores.Parse(Source, client), ImageStores.Parse(Destination, client), cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"{Destination}: {result.RootDigest}");
        Console.WriteLine($"  blobs copied {result.BlobsCopied} ({RegistryCommandSupport.Bytes(result.BytesCopied)}), already present {result.BlobsSkipped}");
        return ExitCodes.Success;
    }
}
