using TurboOci.Registry;

namespace TurboOci.Images;

/// <summary>
/// The registry side of a node, as overlaybd has one per host: a single <see cref="RegistryBlobStore"/> (one
/// client with its connections and tokens, one range cache) built from overlaybd's global config the first
/// time a stack needs it. Stacks whose config names no <c>repoBlobUrl</c> are purely local and never create
/// the cache folder.
/// </summary>
public sealed class NodeRegistry(string? overlaybdConfigPath = null) : IDisposable
{
    private readonly string _configPath = overlaybdConfigPath ?? OverlaybdConfig.DefaultPath;
    private readonly Lock _lock = new();
    private RegistryBlobStore? _store;
    private bool _disposed;

    /// <summary>The shared store when <paramref name="config"/> reads blobs from a registry, else null.</summary>
    public RegistryBlobStore? For(ImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.RepoBlobUrl.Length == 0)
        {
            return null;
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _store ??= RegistryBlobStore.FromConfig(File.Exists(_configPath) ? OverlaybdConfig.Load(_configPath) : new OverlaybdConfig());
        }
    }

    /// <summary><see cref="ImageStack.Open(ImageConfig, RegistryBlobStore?)"/> with this node's store.</summary>
    public ImageStack Open(ImageConfig config) => ImageStack.Open(config, For(config));

    /// <summary><see cref="ImageStack.OpenLowers(ImageConfig, RegistryBlobStore?)"/> with this node's store.</summary>
    public ImageStack OpenLowers(ImageConfig config) => ImageStack.OpenLowers(config, For(config));

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _store?.Dispose();
            _store = null;
        }
    }
}
