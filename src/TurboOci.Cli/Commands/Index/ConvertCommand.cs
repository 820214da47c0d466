using CommandLine;
using TurboOci.Cli.Commands.Registry;
using TurboOci.Formats.GzipIndex;
using TurboOci.Images.Packaging;
using TurboOci.Registry;

namespace TurboOci.Cli.Commands.Index;

/// <summary>
/// <c>turbooci convert SRC DST</c>: what <c>convertor -r REPO -i TAG --turboOCI NEWTAG --mkfs=false</c> of
/// accelerated-container-image does, without overlaybd's tools: a TurboOCIv1 meta image for an unmodified image.
/// </summary>
[Verb("convert", HelpText = "Build and push the TurboOCIv1 meta image of an unmodified OCI/Docker image (like accelerated-container-image's `convertor --turboOCI TAG`): every layer blob is fetched once and indexed, the meta layers (ext4.fs.meta, gzip.meta, .turbo.ociv1), the stock ext4_64 base layer, a config and a manifest with overlaybd's annotations are pushed to DST. overlaybd-snapshotter pulls DST and reads file data from the original blobs in the same repository.")]
public sealed class ConvertCommand : RegistryCommandBase, ICommand
{
    [Value(0, MetaName = "SRC", Required = true, HelpText = "Source image: a reference (registry/repo:tag or @digest), or oci:DIR[:tag] for an OCI image layout. Gzip and plain tar layers only.")]
    public string Source { get; set; } = "";

    [Value(1, MetaName = "DST", Required = true, HelpText = "Meta image: a reference, ':TAG' for another tag in SRC's repository (what overlaybd needs: the node reads the original blobs from the meta image's repository; missing ones are copied there), or oci:DIR[:tag].")]
    public string Destination { get; set; } = "";

    [Option("referrer", HelpText = "Referrer form: OCI media types, artifactType application/vnd.containerd.overlaybd.turbo.v1+json and a subject naming SRC's manifest (listed by the referrers API or its tag fallback); DST is still tagged.")]
    public bool Referrer { get; set; }

    [Option("oci", HelpText = "OCI media types for the manifest, config and layers (default: Docker schema 2, as the convertor writes without --oci).")]
    public bool Oci { get; set; }

    [Option("span", Default = GzipIndexOptions.DefaultSpan, HelpText = "gzip index span in uncompressed bytes (at least 65536); the default 1 MiB is overlaybd's.")]
    public int Span { get; set; } = GzipIndexOptions.DefaultSpan;

    [Option("platform", HelpText = "os/arch[/variant] to convert when SRC is a multi-platform index (default: this machine's).")]
    public string? Platform { get; set; }

    [Option("work-dir", HelpText = "Scratch folder for the fetched blobs and the indexed layers, kept afterwards (default: a temporary folder, removed).")]
    public string? WorkDirectory { get; set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var client = CreateClient();
        var destination = Destination.StartsWith(':') ? WithTag(Source, Destination[1..]) : Destination;
        if (string.Equals(Normalise(destination), Normalise(Source), StringComparison.Ordinal))
        {
            throw new ArgumentException($"DST {Destination} is SRC itself: the meta image would replace the tag of the image it describes; give another tag");
        }

        var options = new MetaImageOptions
        {
            Oci = Oci,
            Referrer = Referrer,
            Span = Span,
            Platform = Platform is null ? null : TurboOci.Registry.Platform.Parse(Platform),
            WorkDirectory = WorkDirectory,
            Log = line => Console.Error.WriteLine($"turbooci: {line}"),
        };
        var result = await new MetaImageConverter(client).ConvertAsync(ImageStores.Parse(Source, client), ImageStores.Parse(destination, client), options, cancellationToken)
            .ConfigureAwait(false);
        var metaBytes = result.Layers.Sum(l => l.Meta.Size);
        var targetBytes = result.Layers.Sum(l => l.Target.Size);
        Console.WriteLine($"{destination}: {result.Manifest.Digest}");
        Console.WriteLine($"  {result.Layers.Count} meta layers, {RegistryCommandSupport.Bytes(metaBytes)} = {100.0 * metaBytes / Math.Max(1, targetBytes):0.00}% of {RegistryCommandSupport.Bytes(targetBytes)} of layers");
        return ExitCodes.Success;
    }

    /// <summary>A reference as the registry sees it (defaults filled in), or a layout as given.</summary>
    private static string Normalise(string image) =>
        image.StartsWith("oci:", StringComparison.Ordinal)
            ? image
            : ImageReference.Parse(image.StartsWith("docker://", StringComparison.Ordinal) ? image["docker://".Length..] : image).ToString();

    /// <summary>SRC's repository with another tag (":TAG" as DST).</summary>
    private static string WithTag(string source, string tag)
    {
        if (source.StartsWith("oci:", StringComparison.Ordinal))
        {
            throw new ArgumentException("DST ':TAG' needs a registry SRC; for a layout give oci:DIR:TAG");
        }

        return ImageReference.Parse(Normalise(source)).WithTag(tag).ToString();
    }
}
