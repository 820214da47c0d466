using CommandLine;
using TurboOci.Registry;
using TurboOci.Registry.Cache;

namespace TurboOci.Cli.Commands.Registry;

/// <summary><c>turbooci blob get REF@DIGEST</c>: a whole blob (digest-checked) or a byte range through the cache.</summary>
[VerbGroup("blob", RegistryCommandSupport.BlobGroupHelp)]
[Verb("get", HelpText = "Fetch a blob from a registry: whole (verified against its digest, resumed after connection loss) or a byte range with --offset/--length through the local range cache.")]
public sealed class BlobGetCommand : CacheCommandBase, ICommand
{
    [Value(0, MetaName = "REF@DIGEST", Required = true, HelpText = "The repository and blob digest, e.g. 127.0.0.1:5000/app@sha256:....")]
    public string Reference { get; set; } = "";

    [Option("offset", HelpText = "First byte of the range to read (range mode).")]
    public long? Offset { get; set; }

    [Option("length", HelpText = "Bytes to read from --offset (range mode; default: to the end of the blob).")]
    public long? Length { get; set; }

    [Option("out", HelpText = "Write here instead of stdout.")]
    public string? Out { get; set; }

    [Option("fetch-unit", HelpText = "Range mode: bytes per Range GET (power of two). Default: cacheConfig.refillSize from --config, else 1M.")]
    public string? FetchUnit { get; set; }

    [Option("no-cache", HelpText = "Range mode: do not use or fill the disk cache.")]
    public bool NoCache { get; set; }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var image = ImageReference.Parse(Reference);
        var digest = image.Digest ?? throw new ArgumentException("blob get needs REF@DIGEST");
        using var client = CreateClient();
        await using var output = Out is null ? Console.OpenStandardOutput() : new FileStream(Out, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true);
        if (Offset is null && Length is null)
        {
            var size = await client.DownloadBlobAsync(image, digest, output, null, cancellationToken).ConfigureAwait(false);
            Console.Error.WriteLine($"turbooci: {digest}: {size} bytes, digest verified");
            return ExitCodes.Success;
        }

        var config = LoadConfig();
        var unit = FetchUnit is null
            ? File.Exists(ConfigPath ?? OverlaybdConfig.DefaultPath) ? config.RefillSize : RemoteBlobOptions.DefaultFetchUnit
            : checked((int)RegistryCommandSupport.ParseSize(FetchUnit, "--fetch-unit"));
        // Through a P2P agent the local cache is bypassed, as overlaybd does: the agent is the node's cache.
        DiskRangeCache? cache = NoCache || client.Options.P2pAddress is not null ? null : OpenCache(Verbose ? line => Console.Error.WriteLine($"turbooci: {line}") : null);
        await using var source = await RemoteBlobSource.OpenAsync(client, image, digest, null,
            new RemoteBlobOptions { FetchUnit = unit, Cache = cache }, cancellationToken).ConfigureAwait(false);
        var offset = Offset ?? 0;
        if (offset < 0 || offset > source.Size)
        {
            throw new ArgumentException($"--offset {offset} is outside the blob of {source.Size} bytes");
        }

        var remaining = Math.Min(Length ?? long.MaxValue, source.Size - offset);
        var buffer = new byte[Math.Max(unit, 1 << 20)];
        while (remaining > 0)
        {
            var chunk = (int)Math.Min(buffer.Length, remaining);
            var read = await source.ReadAtAsync(offset, buffer.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            offset += read;
            remaining -= read;
        }

        await source.DrainAsync().ConfigureAwait(false);
        if (Verbose)
        {
            Console.Error.WriteLine($"turbooci: {source.FetchRequests} range requests, {source.FetchedBytes} bytes fetched");
        }

        return ExitCodes.Success;
    }
}
