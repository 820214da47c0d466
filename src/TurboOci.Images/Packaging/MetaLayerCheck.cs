using TurboOci.Formats.GzipIndex;
using TurboOci.Formats.Lsmt;
using TurboOci.Images.Indexing;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Images.Packaging;

/// <summary>
/// Checks an unpacked meta layer against the original blob it describes, before a config names them together:
/// the gzip index parses (header CRC, sizes, entries) and belongs to a blob of the target's size, and the fs-meta
/// opens as a warp layer (ZFile, trailer, ordered index) whose remote entries stay inside the uncompressed tar.
/// A meta layer that passes cannot make the device read outside its files; one that fails would only fail later,
/// at mount or on a read, with no hint of which layer is wrong.
/// </summary>
internal static class MetaLayerCheck
{
    /// <summary>A native lower (the raw base layer) must open as an overlaybd layer blob: tar envelope, ZFile, LSMT trailer and index.</summary>
    public static void CheckNative(string path)
    {
        using var layer = LayerBlob.OpenFile(path);
    }

    public static void Check(string folder, string targetPath, bool gzip)
    {
        var targetSize = new FileInfo(targetPath).Length;
        var tarSize = targetSize;
        if (gzip)
        {
            using var indexFile = FileBlockSource.OpenRead(Path.Combine(folder, LayerIndexer.GzipIndexName));
            var index = GzipSeekIndex.Load(indexFile, SystemZlib.Instance);
            if (index.CompressedSize != targetSize)
            {
                TurboOciFormatException.Throw(GzipIndexHeader.FormatName, "header.gzip_file_size", GzipIndexHeader.GzipFileSizeOffset,
                    $"the index is for a {index.CompressedSize}-byte gzip blob, the target is {targetSize} bytes");
            }

            tarSize = index.UncompressedSize;
        }
        else if (StartsWithGzipMagic(targetPath))
        {
            // Its tag-1 offsets would then address compressed bytes as if they were the tar: wrong data, no error.
            TurboOciFormatException.Throw("OCI layer", "media type", 0, "the target blob is gzip, but its media type says plain tar and the meta layer has no gzip.meta");
        }

        using var tar = new ZeroBlockSource(tarSize);
        using var layer = LayerBlob.OpenFile(Path.Combine(folder, LayerIndexer.FsMetaName), tar);
        var entries = layer.Index.Entries;
        for (var i = 0; i < entries.Length; i++)
        {
            // Tag 1 maps sectors of the uncompressed tar; compared in sectors, so no multiplication can overflow.
            if (entries[i].Tag == 1 && !entries[i].Zeroed && entries[i].MappedEnd > (ulong)tarSize / LsmtConstants.SectorSize)
            {
                TurboOciFormatException.Throw(LsmtConstants.FormatName, "index.moffset", (long)layer.Trailer.IndexOffset,
                    $"remote entry {entries[i]} ends at byte {entries[i].MappedEnd * LsmtConstants.SectorSize} of the uncompressed tar, which has {tarSize} bytes");
            }
        }
    }

    private static bool StartsWithGzipMagic(string path)
    {
        Span<byte> magic = stackalloc byte[2];
        using var file = File.OpenRead(path);
        return file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    }
}
