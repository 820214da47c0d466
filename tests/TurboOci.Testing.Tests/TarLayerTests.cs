using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using TurboOci.Testing.Tar;

namespace TurboOci.Testing.Tests;

/// <summary>
/// The generated layers as real tools read them: GNU tar extracts exactly what was described, .NET's
/// independent tar reader sees the same header fields, umoci applies the layer stack (whiteouts, opaque
/// directories) to the same tree as <see cref="LayerModel"/>, skopeo accepts the OCI layout, and every
/// compression shape decompresses with gzip to the same tar.
/// </summary>
public sealed class TarLayerTests
{
    private const long PigzBlock = LayerCompressor.PigzBlockKiB * 1024L;

    [Fact]
    public void Gnu_tar_extracts_the_base_layer_exactly_as_described()
    {
        using var temp = new TempDir();
        var layer = SyntheticLayers.Base();
        var extracted = Directory.CreateDirectory(temp.File("rootfs")).FullName;
        GnuTar.Extract(layer, extracted);

        FileTree.AssertSame(LayerModel.Merge([layer]), FileTree.FromDirectory(extracted));
    }

    [Fact]
    public void Names_with_a_dot_slash_prefix_extract_to_the_same_tree()
    {
        using var temp = new TempDir();
        var plain = SyntheticLayers.Base();
        var dotted = new TarLayerBuilder("dotted") { NamePrefix = "./" };
        foreach (var entry in plain.Entries)
        {
            dotted.Add(entry);
        }

        var names = GnuTar.List(dotted).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(plain.Entries.Count, names.Length);
        Assert.All(names, name => Assert.StartsWith("./", name));

        var extracted = Directory.CreateDirectory(temp.File("rootfs")).FullName;
        GnuTar.Extract(dotted, extracted);
        FileTree.AssertSame(LayerModel.Merge([plain]), FileTree.FromDirectory(extracted));
    }

    [Fact]
    public void Gnu_tar_lists_every_name_size_owner_and_link_target()
    {
        var layer = SyntheticLayers.Base();
        var names = GnuTar.List(layer).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(layer.Entries.Select(e => e.Kind == TarEntryKind.Directory ? e.Path + "/" : e.Path), names);

        // tar pads its columns to the widest value seen; compare with runs of spaces folded to one.
        var verbose = Regex.Replace(GnuTar.List(layer, verbose: true), " +", " ");
        Assert.Contains("-rwsr-xr-x 0/0 5000 2023-11-14 22:13 usr/bin/suid-tool\n", verbose);
        Assert.Contains("-rwxr-sr-x 0/5 3000 2023-11-14 22:13 usr/bin/sgid-tool\n", verbose);
        Assert.Contains("-rw-r--r-- 3000000/3000001 25 2023-11-14 22:13 usr/share/big-uid\n", verbose);
        Assert.Contains("-rw------- 1000/1000 8 2020-09-13 12:26 home/user/notes.txt\n", verbose);
        Assert.Contains("crw------- 0/0 511,300000 2023-11-14 22:13 dev/big-numbers\n", verbose);
        Assert.Contains("brw-rw---- 0/6 8,0 2023-11-14 22:13 dev/sda\n", verbose);
        Assert.Contains("prw------- 0/0 0 2023-11-14 22:13 dev/initctl\n", verbose);
        Assert.Contains("hrw-r--r-- 0/0 0 2023-11-14 22:13 usr/bin/tool-hardlink link to usr/bin/tool\n", verbose);
        Assert.Contains($"lrwxrwxrwx 0/0 0 2023-11-14 22:13 usr/share/very-long-symlink -> {SyntheticLayers.VeryLongSymlinkTarget}\n", verbose);
        Assert.Contains("drwxrwxrwt 0/0 0 2023-11-14 22:13 tmp/\n", verbose);
        Assert.Contains("drwx------ 1000/1000 0 2023-11-14 22:13 home/user/\n", verbose);
        Assert.Contains("-rw-r--r-- 0/0 26 2100-01-01 00:00 etc/after-2038\n", verbose);
        Assert.Contains("-rw-r--r-- 0/0 40 1969-12-31 00:00 etc/before-1970\n", verbose);
    }

    [Fact]
    public void Dotnet_tar_reader_sees_the_header_fields_of_every_entry()
    {
        // .NET decodes PAX values as UTF-8 text and rejects binary xattr values (GNU tar and umoci take
        // them; the tests above cover those), so leave out the entries that carry one.
        var layer = new TarLayerBuilder();
        foreach (var entry in SyntheticLayers.Base().Entries.Where(e => e.Xattrs.Values.All(IsPlainUtf8)))
        {
            layer.Add(entry);
        }

        Assert.Contains(layer.Entries, e => e.Xattrs.Count > 0);
        using var reader = new TarReader(new MemoryStream(layer.ToArray()));
        var read = new List<System.Formats.Tar.TarEntry>();
        while (reader.GetNextEntry() is { } entry)
        {
            read.Add(entry);
        }

        Assert.Equal(layer.Entries.Count, read.Count);
        foreach (var (want, got) in layer.Entries.Zip(read))
        {
            var path = want.Kind == TarEntryKind.Directory ? want.Path + "/" : want.Path;
            Assert.Equal(path, got.Name);
            Assert.Equal((UnixFileMode)want.Mode, got.Mode);
            Assert.Equal((int)want.Uid, got.Uid);
            Assert.Equal((int)want.Gid, got.Gid);
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(want.Mtime), got.ModificationTime);
            Assert.Equal(want.Size, got.Length);
            Assert.Equal(want.LinkTarget ?? "", got.LinkName);
            var expectedType = want.Kind switch
            {
                TarEntryKind.File => TarEntryType.RegularFile,
                TarEntryKind.Directory => TarEntryType.Directory,
                TarEntryKind.Symlink => TarEntryType.SymbolicLink,
                TarEntryKind.Hardlink => TarEntryType.HardLink,
                TarEntryKind.CharDevice => TarEntryType.CharacterDevice,
                TarEntryKind.BlockDevice => TarEntryType.BlockDevice,
                _ => TarEntryType.Fifo,
            };
            Assert.Equal(expectedType, got.EntryType);
            if (want.Kind is TarEntryKind.CharDevice or TarEntryKind.BlockDevice)
            {
                var device = Assert.IsType<PosixTarEntry>(got, exactMatch: false);
                Assert.Equal((want.DevMajor, want.DevMinor), (device.DeviceMajor, device.DeviceMinor));
            }

            if (want.Content is not null)
            {
                using var data = new MemoryStream();
                got.DataStream?.CopyTo(data);
                Assert.Equal(want.Content.Sha256(), SHA256.HashData(data.ToArray()));
            }

            if (want.Xattrs.Count > 0)
            {
                var pax = Assert.IsType<PaxTarEntry>(got);
                foreach (var (name, value) in want.Xattrs)
                {
                    // .NET exposes PAX values as strings; compare the UTF-8 bytes it decoded.
                    Assert.Equal(Encoding.UTF8.GetString(value), pax.ExtendedAttributes["SCHILY.xattr." + name]);
                }
            }
        }
    }

    [Fact]
    public void Long_names_are_stored_in_the_encoding_each_entry_asks_for()
    {
        var tar = SyntheticLayers.Base().ToArray();
        var text = Encoding.Latin1.GetString(tar);

        // GNU: one L entry each for the long directory, the file in it and the symlink, plus a K entry for
        // the long symlink target. PAX: path records for the long and non-ASCII names.
        Assert.Equal(4, Occurrences(text, "././@LongLink"));
        Assert.Equal(3, HeaderTypeCount(tar, 'L'));
        Assert.Equal(1, HeaderTypeCount(tar, 'K'));
        Assert.Contains(" path=" + SyntheticLayers.PaxLongDirectory + "/\n", text);
        Assert.Contains(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(" path=opt/ünïcødé/naïve €.txt\n")), text);
        Assert.Contains(" linkpath=" + SyntheticLayers.VeryLongSymlinkTarget + "\n", text);
        Assert.Contains(" uid=3000000\n", text);
        Assert.Contains(" path=opt/short-name-in-pax\n", text);
        Assert.Contains(" mtime=-86400\n", text);

        // Raw UTF-8 and the ustar prefix split need no PAX record.
        Assert.DoesNotContain(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes("path=opt/ünïcødé/raw-utf8-ñ.txt")), text);
        Assert.DoesNotContain("path=opt/long/" + new string('u', 90) + "/", text);
    }

    [Theory]
    [InlineData(LayerCompression.None)]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.GzipTool)]
    [InlineData(LayerCompression.Pigz)]
    [InlineData(LayerCompression.MultiMemberGzip)]
    public void Every_compression_decompresses_with_gzip_to_the_same_tar_and_digests_match(LayerCompression compression)
    {
        using var temp = new TempDir();
        var layer = SyntheticLayers.Base();
        var tar = layer.ToArray();
        var blob = LayerBlob.Write(layer, temp.File("layer"), compression);
        var stored = File.ReadAllBytes(blob.Path);

        var decompressed = compression == LayerCompression.None ? stored : LayerCompressor.GunzipWithTool(stored);
        Assert.Equal(tar, decompressed);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), blob.DiffId);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(stored)), blob.Digest);
        Assert.Equal((stored.LongLength, tar.LongLength), (blob.Size, blob.UncompressedSize));

        // Written twice, the same bytes: layers are deterministic.
        var again = LayerBlob.Write(SyntheticLayers.Base(), temp.File("again"), compression);
        Assert.Equal(blob.Digest, again.Digest);
    }

    [Fact]
    public void Pigz_layers_are_one_member_of_many_sync_flushed_blocks()
    {
        using var temp = new TempDir();
        var numbers = string.Join('\n', Enumerable.Range(0, 250_000)); // 1.6 MB of compressible text
        var layer = new TarLayerBuilder().Directory("d").File("d/numbers", numbers);
        var blob = LayerBlob.Write(layer, temp.File("layer.gz"), LayerCompression.Pigz);
        var stored = File.ReadAllBytes(blob.Path);

        // pigz compresses 128 KiB input blocks separately and byte-aligns their ends, mostly with an empty
        // stored block (00 00 ff ff, a sync flush); one-thread gzip of the same tar has no such marker.
        var blocks = (int)((blob.UncompressedSize + (PigzBlock - 1)) / PigzBlock);
        Assert.True(blocks >= 10, $"only {blocks} pigz blocks");
        Assert.InRange(Occurrences(stored, [0x00, 0x00, 0xFF, 0xFF]), blocks / 2, blocks);
        var gzip = LayerBlob.Write(layer, temp.File("layer.gzip"), LayerCompression.GzipTool);
        Assert.Equal(0, Occurrences(File.ReadAllBytes(gzip.Path), [0x00, 0x00, 0xFF, 0xFF]));
        Assert.Equal(1, Occurrences(stored, [0x1F, 0x8B, 0x08]));
        Assert.Equal(layer.ToArray(), LayerCompressor.GunzipWithTool(stored));
    }

    [Fact]
    public void Multi_member_layers_start_a_gzip_member_every_member_size_bytes()
    {
        using var temp = new TempDir();
        var layer = new TarLayerBuilder().Directory("d").File("d/data", TarContent.Pattern(300_000, seed: 10));
        var tar = layer.ToArray();
        var blob = LayerBlob.Write(layer, temp.File("layer.gz"), LayerCompression.MultiMemberGzip);
        var stored = File.ReadAllBytes(blob.Path);

        var members = IndexesOf(stored, [0x1F, 0x8B, 0x08, 0x00]);
        var expectedMembers = (tar.Length + LayerCompressor.DefaultMemberSize - 1) / LayerCompressor.DefaultMemberSize;
        Assert.Equal(expectedMembers, members.Count);

        // The last member alone is a complete gzip file holding exactly the tail of the tar.
        var tailLength = tar.Length - ((expectedMembers - 1) * LayerCompressor.DefaultMemberSize);
        Assert.Equal(tar[^tailLength..], LayerCompressor.GunzipWithTool(stored[members[^1]..]));
        Assert.Equal(tar, LayerCompressor.GunzipWithTool(stored));
    }

    [Fact]
    public void Umoci_applies_the_synthetic_image_to_the_tree_the_layer_model_predicts()
    {
        using var temp = new TempDir();
        var layers = SyntheticLayers.Image(includeWideDirectory: false);
        var image = OciLayout.Write(temp.File("oci"), layers, LayerCompression.Pigz);
        var bundle = temp.File("bundle");
        Tool.RunChecked("umoci", "unpack", "--image", image.Reference, bundle);

        var expected = LayerModel.Merge(layers);
        FileTree.AssertSame(expected, FileTree.FromDirectory(Path.Combine(bundle, "rootfs")));

        // Spot checks that the model itself says what the layers mean.
        Assert.False(expected.Entries.ContainsKey("var/log/old.log"));
        Assert.False(expected.Entries.ContainsKey("var/cache/junk"));
        Assert.Equal(["upper.txt"], expected.Entries.Keys.Where(k => k.StartsWith("opt/opaque/", StringComparison.Ordinal)).Select(Path.GetFileName));
        Assert.Equal(FileTreeKind.File, expected.Entries["opt/file-then-dir"].Kind);
        Assert.Equal(FileTreeKind.Directory, expected.Entries["opt/dir-then-file"].Kind);
        Assert.False(expected.Entries.ContainsKey("opt/dir-then-file/child"));
        Assert.Equal("motd deleted and re-added in one layer\n", File.ReadAllText(Path.Combine(bundle, "rootfs/etc/motd")));
    }

    [Fact]
    public void Gnu_tar_extracts_the_20000_entry_directory()
    {
        using var temp = TempDir.InMemory();
        var layer = SyntheticLayers.WideDirectory();
        var extracted = Directory.CreateDirectory(temp.File("rootfs")).FullName;
        GnuTar.Extract(layer, extracted);

        var expected = LayerModel.Merge([layer]);
        Assert.Equal(SyntheticLayers.WideDirectoryEntries + 1, expected.Entries.Count);
        FileTree.AssertSame(expected, FileTree.FromDirectory(extracted));
    }

    [Fact]
    public void Skopeo_reads_the_oci_layout_and_its_digests()
    {
        using var temp = new TempDir();
        var image = OciLayout.Write(temp.File("oci"), [SyntheticLayers.Base(), SyntheticLayers.Changes()], LayerCompression.Gzip);

        using var inspect = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "oci:" + image.Reference).Stdout);
        Assert.Equal(image.Layers.Select(l => l.Digest), inspect.RootElement.GetProperty("Layers").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal("amd64", inspect.RootElement.GetProperty("Architecture").GetString());

        using var config = JsonDocument.Parse(Tool.RunChecked("skopeo", "inspect", "--config", "oci:" + image.Reference).Stdout);
        Assert.Equal(image.Layers.Select(l => l.DiffId),
            config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()));

        // skopeo copy checks every blob against its digest and size.
        Tool.RunChecked("skopeo", "copy", "oci:" + image.Reference, "oci:" + temp.File("copy") + ":latest");
        foreach (var layer in image.Layers)
        {
            Assert.Equal(File.ReadAllBytes(layer.Path), File.ReadAllBytes(OciLayout.BlobPath(temp.File("copy"), layer.Digest)));
        }
    }

    [Fact]
    public void Huge_file_layer_over_4_GiB_streams_through_gnu_tar_with_its_exact_size()
    {
        // Streamed straight into tar: 4 GiB of generated zeros, never in memory or on disk.
        var listing = GnuTar.List(SyntheticLayers.HugeFile(), verbose: true);

        Assert.Equal(
            "drwxr-xr-x 0/0               0 2023-11-14 22:13 huge/\n" +
            $"-rw-r--r-- 0/0      {SyntheticLayers.HugeFileSize} 2023-11-14 22:13 huge/zeros.bin\n",
            listing);
    }

    [Fact]
    public void Bad_descriptions_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new TarLayerBuilder().File("../escape", "x"));
        Assert.Throws<ArgumentException>(() => new TarLayerBuilder().File("a//b", "x"));
        Assert.Throws<ArgumentException>(() => new TarLayerBuilder().Symlink("l", ""));
        var tooLong = new TarLayerBuilder().File(new string('r', 101), "x", nameEncoding: TarNameEncoding.RawUtf8);
        Assert.Throws<ArgumentException>(() => tooLong.ToArray());
        var liar = new TarLayerBuilder().File("f", new ShortContent());
        var error = Assert.Throws<InvalidOperationException>(() => liar.ToArray());
        Assert.Contains("ended after 3 of its declared 10 bytes", error.Message);
    }

    [Fact]
    public void Generated_content_is_the_same_however_it_is_read()
    {
        var pattern = TarContent.Pattern(100_003, seed: 42);
        using var whole = pattern.Open();
        var all = new byte[pattern.Length];
        whole.ReadExactly(all);

        using var pieces = pattern.Open();
        var stitched = new MemoryStream();
        var buffer = new byte[7];
        int read;
        while ((read = pieces.Read(buffer, 0, buffer.Length)) > 0)
        {
            stitched.Write(buffer, 0, read);
        }

        Assert.Equal(all, stitched.ToArray());
        Assert.NotEqual(all, ReadAll(TarContent.Pattern(100_003, seed: 43)));
        Assert.Equal(SHA256.HashData(new byte[5000]), TarContent.Zeros(5000).Sha256());
    }

    private static bool IsPlainUtf8(byte[] value)
    {
        try
        {
            return !new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(value).Any(char.IsControl);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private sealed class ShortContent : TarContent
    {
        public override long Length => 10;

        public override Stream Open() => new MemoryStream([1, 2, 3]);
    }

    private static byte[] ReadAll(TarContent content)
    {
        using var stream = content.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static int Occurrences(byte[] data, byte[] value) => IndexesOf(data, value).Count;

    private static List<int> IndexesOf(byte[] data, byte[] value)
    {
        var found = new List<int>();
        for (var at = data.AsSpan().IndexOf(value); at >= 0;)
        {
            found.Add(at);
            var next = data.AsSpan(at + 1).IndexOf(value);
            at = next < 0 ? -1 : at + 1 + next;
        }

        return found;
    }

    // Counts 512-byte headers with this type flag, walking the archive by header sizes.
    private static int HeaderTypeCount(byte[] tar, char type)
    {
        var count = 0;
        for (var offset = 0; offset + 512 <= tar.Length && tar[offset] != 0;)
        {
            if (tar[offset + 156] == (byte)type)
            {
                count++;
            }

            var size = Convert.ToInt64(Encoding.ASCII.GetString(tar, offset + 124, 11), 8);
            offset += 512 + (int)((size + 511) / 512 * 512);
        }

        return count;
    }
}
