using TurboOci.Formats.ZFile;
using TurboOci.Storage;

namespace TurboOci.Formats.Lsmt;

/// <summary>How a layer blob was wrapped, outermost first.</summary>
public sealed record LayerBlobShape(bool Tar, long TarPayloadOffset, bool ZFile, ZFileAlgorithm? Algorithm, int? BlockSize)
{
    public override string ToString() =>
        string.Join(" → ", new[] { Tar ? $"tar (payload at {TarPayloadOffset})" : null, ZFile ? $"ZFile ({Algorithm}, {BlockSize} B blocks)" : null, "LSMT" }
            .Where(s => s is not null));
}

/// <summary>
/// Opens a layer blob as overlaybd does (formats doc §3.1): a one-member tar envelope is unwrapped without
/// copying, a ZFile is decompressed on the fly, and the result is opened as a committed LSMT layer (or a warp
/// layer, when a target is given). Accepts LSMT, ZFile(LSMT), tar(LSMT) and tar(ZFile(LSMT)).
/// </summary>
public static class LayerBlob
{
    /// <summary>Opens <paramref name="blob"/>; the returned layer disposes everything it opened, and the blob too if <paramref name="ownsBlob"/>.</summary>
    /// <param name="warpTarget">For a TurboOCI layer: the uncompressed tar its tag-1 entries read.</param>
    /// <param name="verifyChecksums">Check ZFile block CRCs on every read (overlaybd does when the file's verify byte is set).</param>
    public static CommittedLayer Open(BlockSource blob, BlockSource? warpTarget = null, bool ownsBlob = false, bool verifyChecksums = true) =>
        Open(blob, out _, warpTarget, ownsBlob, verifyChecksums);

    public static CommittedLayer Open(BlockSource blob, out LayerBlobShape shape, BlockSource? warpTarget = null, bool ownsBlob = false, bool verifyChecksums = true)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var owned = new List<IDisposable>();
        try
        {
            var payload = blob;
            var tar = TarEnvelope.TryOpen(blob, out var slice);
            if (tar)
            {
                payload = slice!;
                owned.Add(slice!);
            }

            ZFileReader? zfile = null;
            if (ZFileReader.IsZFile(payload))
            {
                zfile = ZFileReader.Open(payload, verifyChecksums);
                owned.Add(zfile);
                payload = zfile;
            }

            shape = new LayerBlobShape(tar, tar ? slice!.Start : 0, zfile is not null, zfile?.Algorithm, zfile?.BlockSize);
            var layer = CommittedLayer.Open(payload, warpTarget, ownsFile: false);
            owned.Reverse(); // innermost first
            if (ownsBlob)
            {
                owned.Add(blob);
            }

            return layer.AlsoDispose([.. owned]);
        }
        catch
        {
            owned.Reverse();
            owned.ForEach(d => d.Dispose());
            if (ownsBlob)
            {
                blob.Dispose();
            }

            throw;
        }
    }

    /// <summary>Opens a layer blob file read-only.</summary>
    public static CommittedLayer OpenFile(string path, BlockSource? warpTarget = null, bool verifyChecksums = true) =>
        Open(FileBlockSource.OpenRead(path), warpTarget, ownsBlob: true, verifyChecksums);

    /// <summary>Opens layer blob files as one stack, lowest first.</summary>
    public static LayerStack OpenStack(IEnumerable<string> bottomFirstPaths)
    {
        var layers = new List<MappedLayer>();
        try
        {
            foreach (var path in bottomFirstPaths)
            {
                layers.Add(OpenFile(path));
            }

            return new LayerStack(layers, ownsLayers: true);
        }
        catch
        {
            layers.ForEach(l => l.Dispose());
            throw;
        }
    }
}
