using System.Text.Json;
using System.Text.Json.Nodes;
using CommandLine;
using TurboOci.Registry;

namespace TurboOci.Cli.Commands.Registry;

/// <summary><c>turbooci image inspect REF</c>: manifest, config, layers and referrers of an image in a registry.</summary>
[VerbGroup("image", RegistryCommandSupport.ImageGroupHelp)]
[Verb("inspect", HelpText = "Show an image's manifest digest, platform, config, layers and referrers, as text or JSON.")]
public sealed class ImageInspectCommand : RegistryCommandBase, ICommand
{
    [Value(0, MetaName = "REF", Required = true, HelpText = "Image reference: [host[:port]/]repo[:tag][@digest]; no host means Docker Hub.")]
    public string Reference { get; set; } = "";

    [Option("platform", HelpText = "os/arch[/variant] to pick from a multi-platform index. Default: this machine's.")]
    public string? PlatformText { get; set; }

    [Option("json", HelpText = "Print one JSON document instead of text.")]
    public bool Json { get; set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var client = CreateClient();
        var image = ImageReference.Parse(Reference);
        var platform = PlatformText is null ? null : Platform.Parse(PlatformText);
        var (content, manifest, index) = await client.ResolveImageAsync(image, platform, cancellationToken).ConfigureAwait(false);
        var config = await client.GetBlobBytesAsync(image, manifest.Config.ParsedDigest, 4 * 1024 * 1024, cancellationToken).ConfigureAwait(false);
        var referrers = await client.ListReferrersAsync(image, content.Digest, null, cancellationToken).ConfigureAwait(false);
        if (Json)
        {
            var document = new JsonObject
            {
                ["reference"] = image.ToString(),
                ["digest"] = content.Digest.ToString(),
                ["mediaType"] = content.MediaType,
                ["index"] = index is null ? null : JsonNode.Parse(index.Bytes.Span),
                ["indexDigest"] = index?.Digest.ToString(),
                ["manifest"] = JsonNode.Parse(content.Bytes.Span),
                ["config"] = TryParse(config),
                ["referrers"] = JsonSerializer.SerializeToNode(referrers),
            };
            Console.WriteLine(document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Success;
        }

        Console.WriteLine($"{image}");
        if (index is not null)
        {
            Console.WriteLine($"  index        {index.Digest} ({index.MediaType}), {index.AsIndex().Manifests.Count} manifests:");
            foreach (var entry in index.AsIndex().Manifests)
            {
                Console.WriteLine($"    {entry.Platform?.ToString() ?? "(no platform)",-20} {entry.Digest}{(entry.Digest == content.Digest.ToString() ? "  <- chosen" : "")}");
            }
        }

        Console.WriteLine($"  manifest     {content.Digest} ({content.MediaType}, {content.Bytes.Length} bytes)");
        var configNode = TryParse(config);
        Console.WriteLine($"  config       {manifest.Config.Digest} ({manifest.Config.Size} bytes){Describe(configNode)}");
        Console.WriteLine($"  layers       {manifest.Layers.Count}, {RegistryCommandSupport.Bytes(manifest.Layers.Sum(l => l.Size))}");
        foreach (var layer in manifest.Layers)
        {
            Console.WriteLine($"    {layer.Digest}  {layer.Size,12}  {layer.MediaType}");
        }

        Console.WriteLine($"  referrers    {referrers.Count}");
        foreach (var referrer in referrers)
        {
            Console.WriteLine($"    {referrer.Digest}  {referrer.ArtifactType ?? referrer.MediaType}");
        }

        return ExitCodes.Success;
    }

    private static JsonNode? TryParse(byte[] bytes)
    {
        try
        {
            return JsonNode.Parse(bytes);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Describe(JsonNode? config) =>
        config is JsonObject o && o["os"] is JsonValue os && o["architecture"] is JsonValue arch ? $", {os}/{arch}" : "";
}
