using System.Buffers;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using TurboOci.Formats.Ext4.Tar;
using TurboOci.Images.Indexing;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Images.Packaging;

/// <summary>A written meta layer blob: its registry digest and size, and the diff_id (sha256 of the uncompressed tar).</summary>
public sealed record MetaLayerBlobInfo(string Digest, long Size, string DiffId);

/// <summary>What an unpacked meta layer blob held: entry name → size, in archive order.</summary>
public sealed record MetaLayerContents(IReadOnlyList<KeyValuePair<string, long>> Entries)
{
    public bool HasGzipIndex => Entries.Any(e => e.Key == LayerIndexer.GzipIndexName);
}

/// <summary>Upper bounds the unpacker enforces before it writes anything (a hostile blob must not fill the disk).</summary>
public sealed record MetaLayerLimits
{
    /// <summary>fs-meta is about 1% of the layer it describes; 4 GiB covers layers of hundreds of GiB.</summary>
    public long MaxFsMetaBytes { get; init; } = 4L << 30;

    /// <summary>gzip.meta is about 3% of the compressed layer at overlaybd's 1 MiB span.</summary>
    public long MaxGzipIndexBytes { get; init; } = 4L << 30;

    /// <summary>The marker is empty as accelerated-container-image writes it; allow a little slack.</summary>
    public long MaxMarkerBytes { get; init; } = 4096;

    /// <summary>
    /// The largest meta layer blob worth downloading: the three files at their limits, plus tar headers and
    /// gzip's worst-case growth on incompressible data (deflate's stored blocks: 5 bytes per 64 KiB, under 1/64).
    /// </summary>
    public long MaxBlobBytes
    {
        get
        {
            var files = checked(MaxFsMetaBytes + MaxGzipIndexBytes + MaxMarkerBytes + (8 * 512));
            return checked(files + (files / 64) + 4096);
        }
    }
}

/// <summary>
/// The TurboOCIv1 meta layer blob (<c>turboOCIv1.tar.gz</c>), as accelerated-container-image packs it
/// (<c>cmd/convertor/builder/builder_utils.go</c> <c>buildArchiveFromFiles</c>): a gzip of a tar holding
/// <c>ext4.fs.meta</c>, the empty <c>.turbo.ociv1</c> marker and, for gzip layers, <c>gzip.meta</c>, in that order.
/// Every header is what Go's <c>archive/tar</c> writes for a header that sets only name, mode, size and type:
/// ustar, mode 0644, uid/gid 0, mtime 0, no user or group names, devmajor/devminor 0, and the archive closes
/// with two zero blocks (no record padding). So the same folder always gives the same blob and diff_id.
/// </summary>
public static class MetaLayerBlob
{
    public const string FormatName = "TurboOCI meta layer";

    /// <summary>The EROFS flavour's fs-meta: recognised so it is refused by name rather than as "unexpected".</summary>
    public const string ErofsFsMetaName = "erofs.fs.meta";

    /// <summary>Entries in the order accelerated-container-image adds them.</summary>
    public static readonly IReadOnlyList<string> EntryOrder = [LayerIndexer.FsMetaName, LayerIndexer.TurboMarkerName, LayerIndexer.GzipIndexName];

    private const int BlockSize = 512;
    private const int EntryMode = 0x1A4; // 0644: what os.Create gives the files under umask 022, copied by tar.FileInfoHeader

    /// <summary>
    /// Packs the indexer's output folder (<see cref="LayerIndexer"/>: ext4.fs.meta, .turbo.ociv1, optional
    /// gzip.meta; gzip.spans is ours and stays out) into <paramref name="output"/>.
    /// </summary>
    public static MetaLayerBlobInfo Write(string folder, Stream output)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var required in EntryOrder.Take(2).Where(name => !File.Exists(Path.Combine(folder, name))))
        {
            throw new FileNotFoundException($"{folder} has no {required}: not a TurboOCI layer folder", Path.Combine(folder, required));
        }

        using var compressedHash = new HashingWriteStream(output);
        using var tarHash = new HashingWriteStream(null);
        using (var gzip = new GZipStream(compressedHash, CompressionLevel.Optimal, leaveOpen: true))
        {
            var tar = new TarSink(gzip, tarHash);
            var header = new byte[BlockSize];
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                foreach (var name in EntryOrder.Where(name => File.Exists(Path.Combine(folder, name))))
                {
                    using var file = new FileStream(Path.Combine(folder, name), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    var size = file.Length;
                    WriteHeader(header, name, size);
                    tar.Write(header);
                    long copied = 0;
                    int read;
                    while ((read = file.Read(buffer, 0, (int)Math.Min(buffer.Length, size - copied))) > 0)
                    {
                        tar.Write(buffer.AsSpan(0, read));
                        copied += read;
                    }

                    if (copied != size)
                    {
                        throw new IOException($"{file.Name} changed size while it was packed ({copied} of {size} bytes)");
                    }

                    tar.Write(new byte[Padding(size)]);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            tar.Write(new byte[2 * BlockSize]);
        }

        return new MetaLayerBlobInfo(compressedHash.Digest(), compressedHash.Length, tarHash.Digest());
    }

    /// <summary>Packs <paramref name="folder"/> into the file <paramref name="path"/>.</summary>
    public static MetaLayerBlobInfo WriteFile(string folder, string path)
    {
        using var output = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        return Write(folder, output);
    }

    /// <summary>
    /// The ustar header Go's <c>archive/tar</c> writes for <c>{Name, Mode: 0644, Size, Typeflag: '0'}</c>: octal
    /// fields zero-padded with a trailing NUL, checksum as six digits, NUL and space, magic <c>ustar\0</c> + <c>00</c>.
    /// </summary>
    public static void WriteHeader(Span<byte> block, string name, long size)
    {
        var nameBytes = Encoding.UTF8.GetByteCount(name);
        if (nameBytes is 0 or > 100 || name.Contains('/'))
        {
            throw new ArgumentException($"'{name}' is not a plain file name that fits a ustar header", nameof(name));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(size);
        block = block[..BlockSize];
        block.Clear();
        Encoding.UTF8.GetBytes(name, block[..100]);
        WriteOctal(block.Slice(100, 8), EntryMode);
        WriteOctal(block.Slice(108, 8), 0); // uid
        WriteOctal(block.Slice(116, 8), 0); // gid
        WriteOctal(block.Slice(124, 12), size);
        WriteOctal(block.Slice(136, 12), 0); // mtime: Go writes the Unix epoch for a zero ModTime
        block[156] = (byte)'0';
        "ustar\0"u8.CopyTo(block.Slice(257, 6));
        "00"u8.CopyTo(block.Slice(263, 2));
        WriteOctal(block.Slice(329, 8), 0); // devmajor
        WriteOctal(block.Slice(337, 8), 0); // devminor
        block.Slice(148, 8).Fill((byte)' ');
        var checksum = 0;
        foreach (var b in block)
        {
            checksum += b;
        }

        WriteOctal(block.Slice(148, 7), checksum);
        block[155] = (byte)' ';
    }

    /// <summary>
    /// Unpacks a meta layer blob (the node's side: what containerd's untar into <c>snapshots/&lt;id&gt;/fs/</c> does)
    /// through <paramref name="createFile"/>, which receives each entry's name. Only the known plain names are
    /// accepted, each once, regular files only, each size bounded before any byte is written; <c>.turbo.ociv1</c>
    /// and <c>ext4.fs.meta</c> must be present. Damage of any kind is a <see cref="TurboOciFormatException"/>.
    /// </summary>
    public static MetaLayerContents Unpack(Stream blob, Func<string, Stream> createFile, MetaLayerLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(createFile);
        limits ??= new MetaLayerLimits();
        var entries = new List<KeyValuePair<string, long>>();
        using var inflated = new CheckedGzipReadStream(blob, SystemZlib.Instance);
        var reader = new TarEntryReader(inflated);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            while (reader.Next() is { } member)
            {
                CheckMember(member, entries, limits);
                using (var output = createFile(member.Path))
                {
                    int read;
                    while ((read = reader.ReadData(buffer)) > 0)
                    {
                        output.Write(buffer, 0, read);
                    }
                }

                entries.Add(new(member.Path, member.Size));
            }

            // Everything after the tar's end blocks must still inflate cleanly (the gzip trailer's CRC and length).
            while (inflated.Read(buffer) > 0)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        foreach (var required in EntryOrder.Take(2).Where(name => entries.All(e => e.Key != name)))
        {
            TurboOciFormatException.Throw(FormatName, required, reader.Position, $"the blob has no {required}: not a TurboOCIv1 meta layer");
        }

        return new MetaLayerContents(entries);
    }

    /// <summary>Unpacks into <paramref name="folder"/> (created); on damage, the files already written are removed.</summary>
    public static MetaLayerContents UnpackToFolder(Stream blob, string folder, MetaLayerLimits? limits = null)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        try
        {
            return Unpack(blob, name =>
            {
                var path = Path.Combine(folder, name);
                written.Add(path);
                return new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            }, limits);
        }
        catch
        {
            written.ForEach(File.Delete);
            throw;
        }
    }

    /// <summary>Refuses anything but a bounded regular file with one of the known names, not seen before.</summary>
    private static void CheckMember(TarMember member, List<KeyValuePair<string, long>> seen, MetaLayerLimits limits)
    {
        var name = member.Path;
        if (name == ErofsFsMetaName)
        {
            TurboOciFormatException.Throw(FormatName, "entry name", member.HeaderOffset, $"'{name}': EROFS meta layers are not supported (ext4 only)");
        }

        if (!EntryOrder.Contains(name))
        {
            TurboOciFormatException.Throw(FormatName, "entry name", member.HeaderOffset,
                $"unexpected entry '{Printable(name)}' (a meta layer holds only {string.Join(", ", EntryOrder)})");
        }

        if (member.Type != TarMemberType.Regular)
        {
            TurboOciFormatException.Throw(FormatName, "entry type", member.HeaderOffset, $"'{name}' is a {member.Type}, not a regular file");
        }

        if (seen.Any(e => e.Key == name))
        {
            TurboOciFormatException.Throw(FormatName, "entry name", member.HeaderOffset, $"'{name}' appears twice");
        }

        var limit = name switch
        {
            LayerIndexer.FsMetaName => limits.MaxFsMetaBytes,
            LayerIndexer.GzipIndexName => limits.MaxGzipIndexBytes,
            _ => limits.MaxMarkerBytes,
        };
        if (member.Size > limit)
        {
            TurboOciFormatException.Throw(FormatName, "entry size", member.HeaderOffset, $"'{name}' claims {member.Size} bytes, more than the {limit} allowed");
        }
    }

    private static string Printable(string name) =>
        name.Length > 80 ? string.Concat(name.AsSpan(0, 80), "…") : new string(name.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    private static int Padding(long size) => (int)((BlockSize - (size % BlockSize)) % BlockSize);

    private static void WriteOctal(Span<byte> field, long value)
    {
        var digits = Convert.ToString(value, 8);
        if (digits.Length > field.Length - 1)
        {
            throw new ArgumentOutOfRangeException(nameof(value), $"{value} does not fit a {field.Length}-byte octal field");
        }

        field.Clear();
        Encoding.ASCII.GetBytes(digits.PadLeft(field.Length - 1, '0'), field);
    }

    /// <summary>Counts and hashes what passes through to <c>inner</c> (or only hashes, when inner is null).</summary>
    private sealed class HashingWriteStream(Stream? inner) : Stream
    {
        private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;

        public string Digest() => "sha256:" + Convert.ToHexStringLower(_sha256.GetCurrentHash());

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner?.Write(buffer);
            _sha256.AppendData(buffer);
            _length += buffer.Length;
        }

        public override void Flush() => inner?.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _sha256.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Writes the tar bytes to the compressor and to the diff_id hash.</summary>
    private sealed class TarSink(Stream first, Stream second)
    {
        public void Write(ReadOnlySpan<byte> buffer)
        {
            first.Write(buffer);
            second.Write(buffer);
        }
    }
}
