using TurboOci.Images;

namespace TurboOci.Fuzz.Targets;

/// <summary>overlaybd's config.v1.json, as parsed by the device service.</summary>
public sealed class ImageConfigTarget : IFuzzTarget
{
    public string Name => "image-config";

    public void Run(ReadOnlySpan<byte> input)
    {
        var config = ImageConfig.Parse(input);
        // What we parse we must be able to write and read back unchanged.
        var again = ImageConfig.Parse(config.ToJson());
        if (!again.Lowers.SequenceEqual(config.Lowers) || again.Upper != config.Upper || again.RepoBlobUrl != config.RepoBlobUrl)
        {
            throw new InvalidOperationException("config.v1.json did not round-trip");
        }
    }
}
