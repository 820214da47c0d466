using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using TurboOci.Images.Indexing;
using TurboOci.Images.Packaging;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Images.Tests.Packaging;

/// <summary>
/// The meta layer blob (turboOCIv1.tar.gz): judged by gzip, GNU tar and Python's tarfile (which, in ustar format
/// with Go's field values, writes the headers Go's archive/tar writes), reproducible, and unpacked safely.
/// </summary>
public sealed class MetaLayerBlobTests
{
    private static string ReferenceLayer => RepoPaths.Fixture("overlaybd-reference", "inputs", "layer.tar.gz");

    // Python's tarfile with exactly the header fields accelerated-container-image sets (name, mode, size, type)
    // and Go's values for the rest: uid/gid 0, mtime 0, empty user and group names.
    private const string PythonUstar = """
        import io, sys, tarfile
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path in sys.argv[1:]:
                info = tarfile.TarInfo(path.rsplit("/", 1)[1])
                data = open(path, "rb").read()
                info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = len(data), 0o644, 0, 0, 0, "", ""
                tar.addfile(info, io.BytesIO(data))
        sys.stdout.write(out.getvalue().hex())
        """;

    [Fact]
    public void TheReferenceLayersMetaBlobHasGoArchiveTarHeadersAndIsReproducible()
    {
        using var work = new TempDir();
        var first = Assert.Single(StackIndexer.Index([ReferenceLayer], work.File("a")));

        // The same files elsewhere, with other permissions and times: headers carry only name, mode, size and type.
        var copy = work.File("copy");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.EnumerateFiles(first.Folder))
        {
            var target = Path.Combine(copy, Path.GetFileName(file));
            File.Copy(file, target);
            File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.SetLastWriteTimeUtc(target, new DateTime(2031, 5, 6, 7, 8, 9, DateTimeKind.Utc));
        }

        var blobA = work.File("a.tar.gz");
        var blobB = work.File("b.tar.gz");
        var infoA = MetaLayerBlob.WriteFile(first.Folder, blobA);
        var infoB = MetaLayerBlob.WriteFile(copy, blobB);
        Assert.Equal(infoA, infoB);
        Assert.Equal(File.ReadAllBytes(blobA), File.ReadAllBytes(blobB));
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(blobA))), infoA.Digest);
        Assert.Equal(new FileInfo(blobA).Length, infoA.Size);

        // gzip itself accepts the stream, and the diff_id is the sha256 of what it inflates to.
        Tool.RunChecked("gzip", "-t", blobA);
        var tarPath = work.File("meta.tar");
        using (var tarFile = File.Create(tarPath))
        {
            Tool.RunFilterChecked("gzip", ["-dc", blobA], null, tarFile);
        }

        var tar = File.ReadAllBytes(tarPath);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), infoA.DiffId);

        // Header for header what Go's archive/tar writes. Python differs from Go in two places only: it leaves
        // devmajor/devminor of a regular file as NULs where Go's templateV7Plus writes "0000000\0" (so the
        // checksum differs too), and it pads the archive to a 10 KiB record where Go writes two zero blocks.
        string[] names = [LayerIndexer.FsMetaName, LayerIndexer.TurboMarkerName, LayerIndexer.GzipIndexName];
        var python = Convert.FromHexString(Tool.RunChecked("python3", ["-c", PythonUstar, .. names.Select(n => Path.Combine(first.Folder, n))]).Stdout);
        Assert.True(python.Length >= tar.Length);
        Assert.False(python.AsSpan(tar.Length).ContainsAnyExcept((byte)0));
        Assert.Equal(0, tar.Length % 512);
        Assert.False(tar.AsSpan(tar.Length - 1024).ContainsAnyExcept((byte)0));
        var ours = tar.ToArray();
        var theirs = python[..tar.Length];
        long header = 0;
        foreach (var name in names)
        {
            Assert.Equal("0000000\00000000\0"u8.ToArray(), ours.AsSpan((int)header + 329, 16).ToArray());
            Assert.Equal(TarChecksum(ours.AsSpan((int)header, 512)), Convert.ToInt32(System.Text.Encoding.ASCII.GetString(ours, (int)header + 148, 6), 8));
            foreach (var bytes in new[] { ours, theirs })
            {
                bytes.AsSpan((int)header + 148, 8).Clear();
                bytes.AsSpan((int)header + 329, 16).Clear();
            }

            header += 512 + ((new FileInfo(Path.Combine(first.Folder, name)).Length + 511) / 512 * 512);
        }

        Assert.Equal(theirs, ours);

        // GNU tar lists exactly the three files in ACI's order, 0644, root, epoch; gzip.spans (ours) stays out.
        var listing = Tool.RunChecked("tar", "-tvzf", blobA, "--numeric-owner").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, listing.Length);
        for (var i = 0; i < names.Length; i++)
        {
            var size = new FileInfo(Path.Combine(first.Folder, names[i])).Length;
            Assert.Matches($@"^-rw-r--r-- 0/0 +{size} 1970-01-01 00:00 {System.Text.RegularExpressions.Regex.Escape(names[i])}$", listing[i]);
        }
    }

    [Fact]
    public void UnpackingGivesBackEveryFileByteForByteAndAPlainTarLayerHasNoGzipIndex()
    {
        using var work = new TempDir();
        var layer = Assert.Single(StackIndexer.Index([ReferenceLayer], work.File("out")));
        var blob = work.File("meta.tar.gz");
        MetaLayerBlob.WriteFile(layer.Folder, blob);

        var unpacked = work.File("unpacked");
        MetaLayerContents contents;
        using (var input = File.OpenRead(blob))
        {
            contents = MetaLayerBlob.UnpackToFolder(input, unpacked);
        }

        Assert.True(contents.HasGzipIndex);
        Assert.Equal(MetaLayerBlob.EntryOrder, contents.Entries.Select(e => e.Key));
        foreach (var name in MetaLayerBlob.EntryOrder)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(layer.Folder, name)), File.ReadAllBytes(Path.Combine(unpacked, name)));
        }

        // A plain tar layer has no gzip index, and its meta blob none either.
        var plain = work.File("layer.tar");
        using (var output = File.Create(plain))
        {
            Tool.RunFilterChecked("gzip", ["-dc", ReferenceLayer], null, output);
        }

        var plainLayer = Assert.Single(StackIndexer.Index([plain], work.File("plain")));
        var plainBlob = work.File("plain.tar.gz");
        MetaLayerBlob.WriteFile(plainLayer.Folder, plainBlob);
        Assert.Equal(2, Tool.RunChecked("tar", "-tzf", plainBlob).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        using var plainInput = File.OpenRead(plainBlob);
        Assert.False(MetaLayerBlob.Unpack(plainInput, _ => Stream.Null).HasGzipIndex);
    }

    public static TheoryData<string, string> DamagedTars => new()
    {
        { "traversal", "unexpected entry '../ext4.fs.meta'" },
        { "absolute", "unexpected entry '/etc/passwd'" },
        { "symlink", "'ext4.fs.meta' is a Symlink, not a regular file" },
        { "hardlink", "'gzip.meta' is a HardLink, not a regular file" },
        { "duplicate", "'ext4.fs.meta' appears twice" },
        { "oversized", "'ext4.fs.meta' claims 70000 bytes, more than the 65536 allowed" },
        { "no-marker", "the blob has no .turbo.ociv1" },
        { "no-fs-meta", "the blob has no ext4.fs.meta" },
        { "erofs", "EROFS meta layers are not supported" },
        { "directory", "'ext4.fs.meta' is a Directory, not a regular file" },
    };

    [Theory]
    [MemberData(nameof(DamagedTars))]
    public void AHostileOrIncompleteArchiveIsRefusedNamingTheEntryAndNothingIsLeftBehind(string shape, string message)
    {
        using var work = new TempDir();
        var blob = Gzip(HostileTar(shape));
        var folder = work.File("fs");
        var error = Assert.Throws<TurboOciFormatException>(() => MetaLayerBlob.UnpackToFolder(new MemoryStream(blob), folder, SmallLimits));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        Assert.Equal([folder], Directory.EnumerateFileSystemEntries(work.Path));
    }

    [Fact]
    public void TruncatedOrCorruptedGzipIsRefusedAsAFormatError()
    {
        using var work = new TempDir();
        var layer = Assert.Single(StackIndexer.Index([ReferenceLayer], work.File("out")));
        MetaLayerBlob.WriteFile(layer.Folder, work.File("meta.tar.gz"));
        var blob = File.ReadAllBytes(work.File("meta.tar.gz"));

        // Cut inside the deflate data, cut inside the trailer, a flipped CRC, a flipped data byte, not gzip at all.
        byte[][] damaged =
        [
            blob[..(blob.Length / 2)],
            blob[..^3],
            [.. blob[..^8], (byte)(blob[^8] ^ 0xFF), .. blob[^7..]],
            [.. blob[..(blob.Length / 3)], (byte)(blob[blob.Length / 3] ^ 0x55), .. blob[(blob.Length / 3 + 1)..]],
            File.ReadAllBytes(RepoPaths.Fixture("overlaybd-reference", "turbooci", "gzip.meta")),
        ];
        for (var i = 0; i < damaged.Length; i++)
        {
            var error = Record.Exception(() => MetaLayerBlob.Unpack(new MemoryStream(damaged[i]), _ => Stream.Null));
            Assert.True(error is TurboOciFormatException, $"case {i}: {error?.ToString() ?? "accepted"}");
        }
    }

    /// <summary>The ustar checksum: the byte sum with the checksum field read as spaces.</summary>
    private static int TarChecksum(ReadOnlySpan<byte> block)
    {
        var sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? ' ' : block[i];
        }

        return sum;
    }

    private static MetaLayerLimits SmallLimits => new() { MaxFsMetaBytes = 65536, MaxGzipIndexBytes = 65536 };

    /// <summary>Archives written with .NET's own tar writer (not ours), each wrong in one way.</summary>
    private static byte[] HostileTar(string shape)
    {
        var output = new MemoryStream();
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            void File(string name, int size = 16)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(new byte[size]) };
                tar.WriteEntry(entry);
            }

            switch (shape)
            {
                case "traversal":
                    File("../ext4.fs.meta");
                    break;
                case "absolute":
                    File("/etc/passwd");
                    break;
                case "symlink":
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "ext4.fs.meta") { LinkName = "/etc/shadow" });
                    break;
                case "hardlink":
                    File("ext4.fs.meta");
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "gzip.meta") { LinkName = "ext4.fs.meta" });
                    break;
                case "duplicate":
                    File("ext4.fs.meta");
                    File(".turbo.ociv1", 0);
                    File("ext4.fs.meta");
                    break;
                case "oversized":
                    File(".turbo.ociv1", 0);
                    File("ext4.fs.meta", 70000);
                    break;
                case "no-marker":
                    File("ext4.fs.meta");
                    File("gzip.meta");
                    break;
                case "no-fs-meta":
                    File(".turbo.ociv1", 0);
                    break;
                case "erofs":
                    File("erofs.fs.meta");
                    break;
                case "directory":
                    tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "ext4.fs.meta"));
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(shape));
            }
        }

        return output.ToArray();
    }

    private static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }
}
