using TurboOci.Images.Packaging;

namespace TurboOci.Fuzz.Targets;

/// <summary>
/// A TurboOCIv1 meta layer blob (tar.gz) as the node unpacks it: entries go to bounded in-memory sinks; every
/// accepted entry must be one of the known names and within the limits, and what is written must be what was claimed.
/// </summary>
public sealed class MetaLayerBlobTarget : IFuzzTarget
{
    private static readonly MetaLayerLimits s_limits = new() { MaxFsMetaBytes = 1 << 20, MaxGzipIndexBytes = 1 << 20, MaxMarkerBytes = 4096 };

    public string Name => "meta-layer-blob";

    public void Run(ReadOnlySpan<byte> input)
    {
        var written = new Dictionary<string, MemoryStream>(StringComparer.Ordinal);
        var contents = MetaLayerBlob.Unpack(new MemoryStream(input.ToArray()), name =>
        {
            var sink = new MemoryStream();
            written.Add(name, sink); // a second entry with one name must have been refused before this
            return sink;
        }, s_limits);

        foreach (var (name, size) in contents.Entries)
        {
            if (!MetaLayerBlob.EntryOrder.Contains(name) || written[name].ToArray().Length != size || size > s_limits.MaxFsMetaBytes)
            {
                throw new InvalidOperationException($"accepted entry {name} of {size} bytes wrote {written[name].ToArray().Length}");
            }
        }
    }
}
