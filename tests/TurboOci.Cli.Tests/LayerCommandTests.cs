using System.Security.Cryptography;
using System.Text.Json;
using TurboOci.Testing;
using TurboOci.Testing.Tar;
using TestLayerBlob = TurboOci.Testing.Tar.LayerBlob;

namespace TurboOci.Cli.Tests;

/// <summary>The layer verbs and export, run as a user runs them, against overlaybd's reference files.</summary>
public sealed class LayerCommandTests : IDisposable
{
    private const string Layers12Sha256 = "c9a46ec72f3f8db3f9d627bdce7c8add39be02471942a26232088423b5d69446";
    private readonly TempDir _temp = new("layer-cli-");

    private static string Reference(string name) => RepoPaths.Fixture("overlaybd-reference", "lsmt", name);

    private string CopyOf(string name)
    {
        var path = _temp.File(name);
        File.Copy(Reference(name), path);
        return path;
    }

    private static void AssertOk((int Code, string Stdout, string Stderr) result) => Assert.True(result.Code == 0, result.Stderr);

    [Theory]
    [InlineData("l1.commit")]
    [InlineData("l1.commit.lz4", "--compress", "lz4")]
    [InlineData("l1.commit.zstd", "--compress", "zstd")]
    [InlineData("l1.commit.lz4.tar", "--compress", "lz4", "--tar")]
    public void Commit_writes_overlaybd_commit_bytes(string reference, params string[] options)
    {
        var output = _temp.File("out");
        AssertOk(CliRunner.Run(["layer", "commit", CopyOf("l1.rw.data"), CopyOf("l1.rw.index"), output, "--uuid", "11111111-1111-1111-1111-111111111111", .. options]));
        Assert.Equal(File.ReadAllBytes(Reference(reference)), File.ReadAllBytes(output));
    }

    [Fact]
    public void Commit_with_parent_writes_the_second_reference_layer()
    {
        var output = _temp.File("out");
        AssertOk(CliRunner.Run("layer", "commit", CopyOf("l2.rw.data"), CopyOf("l2.rw.index"), output,
            "--uuid", "22222222-2222-2222-2222-222222222222", "--parent", "11111111-1111-1111-1111-111111111111", "--compress", "lz4"));
        Assert.Equal(File.ReadAllBytes(Reference("l2.commit.lz4")), File.ReadAllBytes(output));
    }

    [Fact]
    public void Merge_with_lz4_writes_overlaybd_merge_bytes()
    {
        var output = _temp.File("merged");
        AssertOk(CliRunner.Run("layer", "merge", output, Reference("l1.commit.lz4"), Reference("l2.commit.lz4"), "--compress", "lz4"));
        Assert.Equal(File.ReadAllBytes(Reference("merged.l1l2.lz4")), File.ReadAllBytes(output));
    }

    [Fact]
    public void Create_then_inspect_shows_both_headers()
    {
        AssertOk(CliRunner.Run("layer", "create", _temp.File("d"), _temp.File("i"), "--size", "1G", "--parent", "11111111-1111-1111-1111-111111111111"));
        var (code, stdout, stderr) = CliRunner.Run("layer", "inspect", _temp.File("i"), "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("rw-index", json.RootElement.GetProperty("kind").GetString());
        var header = json.RootElement.GetProperty("header");
        Assert.Equal("0x01", header.GetProperty("flags").GetString());
        Assert.Equal(4096, header.GetProperty("index_offset").GetInt64());
        Assert.Equal(1L << 30, header.GetProperty("virtual_size").GetInt64());
        Assert.Equal("11111111-1111-1111-1111-111111111111", header.GetProperty("parent_uuid").GetString());
        Assert.Equal(4096, new FileInfo(_temp.File("d")).Length);
    }

    [Fact]
    public void Inspect_json_of_a_tar_wrapped_blob_summarises_the_index()
    {
        var (code, stdout, stderr) = CliRunner.Run("layer", "inspect", Reference("l1.commit.lz4.tar"), "--json", "--entries");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal("committed", root.GetProperty("kind").GetString());
        Assert.Equal("0x06", root.GetProperty("trailer").GetProperty("flags").GetString());
        Assert.Equal(335360, root.GetProperty("trailer").GetProperty("index_offset").GetInt64());
        var index = root.GetProperty("index");
        Assert.Equal(256, index.GetProperty("declared").GetInt64());
        Assert.Equal(6, index.GetProperty("real").GetInt64());
        Assert.Equal(250, index.GetProperty("padding").GetInt64());
        Assert.Equal(1, index.GetProperty("zeroed_entries").GetInt32());
        var zeroed = root.GetProperty("entries").EnumerateArray().Single(e => e.GetProperty("zeroed").GetBoolean());
        Assert.Equal(1049600, zeroed.GetProperty("offset").GetInt64());
        Assert.Equal(2048, zeroed.GetProperty("length").GetInt64());
    }

    [Fact]
    public void Inspect_recognises_overlaybd_fs_meta_as_a_warp_layer_without_being_told()
    {
        // The numbers come from the fixture README ("ext4.fs.meta, decoded"): a 218,848-byte LSMT with 46 unpadded
        // entries, so 218848 - 4096 (header) - 46 * 16 (index) - 4096 (trailer) = 209,920 bytes of metadata; and the
        // six tag-1 entries it lists (512 + 3700224 + 262144 + 65536 + 8192 + 512 bytes) from tar offset 1536 to
        // run.sh's data at 4042240 + 512.
        var meta = RepoPaths.Fixture("overlaybd-reference", "turbooci", "ext4.fs.meta");
        var (code, stdout, stderr) = CliRunner.Run("layer", "inspect", meta, "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var index = json.RootElement.GetProperty("index");
        Assert.Equal(46, index.GetProperty("declared").GetInt64());
        Assert.Equal(0, index.GetProperty("padding").GetInt64());
        Assert.Equal([0, 1], index.GetProperty("tags").EnumerateArray().Select(t => t.GetInt32()));
        var warp = json.RootElement.GetProperty("warp");
        Assert.Equal(40, warp.GetProperty("metadata_entries").GetInt32());
        Assert.Equal(209920, warp.GetProperty("metadata_bytes").GetInt64());
        Assert.Equal(6, warp.GetProperty("remote_entries").GetInt32());
        Assert.Equal(512 + 3700224 + 262144 + 65536 + 8192 + 512, warp.GetProperty("remote_bytes").GetInt64());
        Assert.Equal(1536, warp.GetProperty("tar_start").GetInt64());
        Assert.Equal(4042240 + 512, warp.GetProperty("tar_end").GetInt64());

        // The text form says the same; --warp forces the reading and gives the same answer.
        var text = CliRunner.Run("layer", "inspect", meta);
        Assert.True(text.Code == 0, text.Stderr);
        Assert.Contains("warp layer (TurboOCI fs-meta): 40 metadata entries, 209920 bytes in this file (tag 0); 6 remote entries, 4037120 bytes mapped to the uncompressed tar [1536, 4042752) (tag 1)",
            text.Stdout, StringComparison.Ordinal);
        var forced = CliRunner.Run("layer", "inspect", meta, "--warp", "--json");
        Assert.True(forced.Code == 0, forced.Stderr);
        Assert.Equal(stdout, forced.Stdout);
    }

    [Fact]
    public void Inspect_summarises_the_fs_meta_turbooci_index_writes_against_the_tar_as_python_reads_it()
    {
        var layer = new TarLayerBuilder("inspect")
            .Directory("data")
            .File("data/odd.bin", TarContent.Pattern(1000, seed: 7))
            .File("data/block.bin", TarContent.Pattern(4096, seed: 8))
            .File("data/big.bin", TarContent.Pattern(300_000, seed: 9), mode: "755")
            .EmptyFile("data/empty")
            .Hardlink("data/odd-link", "data/odd.bin")
            .Symlink("data/link", "odd.bin")
            .File("data/tail.txt", "tail\n");
        var blob = TestLayerBlob.Write(layer, _temp.File("layer.tar.gz"), LayerCompression.Gzip);
        var output = _temp.File("indexed");
        AssertOk(CliRunner.Run("index", blob.Path, "--output", output));
        var fsMeta = Assert.Single(Directory.GetFiles(output, "ext4.fs.meta", SearchOption.AllDirectories));

        // Independently: Python's tarfile gives every regular file's data offset; overlaybd maps each non-empty
        // file's size rounded up to 512 (formats doc §5.2), and nothing for hardlinks or empty files.
        var files = Tool.RunChecked("python3", "-c", """
            import sys, tarfile
            with tarfile.open(sys.argv[1], "r:gz") as tar:
                for m in tar:
                    if m.isreg() and m.size > 0:
                        print(m.offset_data, (m.size + 511) // 512 * 512)
            """, blob.Path).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ').Select(long.Parse).ToArray()).ToList();
        Assert.Equal(4, files.Count);

        var (code, stdout, stderr) = CliRunner.Run("layer", "inspect", fsMeta, "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var warp = json.RootElement.GetProperty("warp");
        Assert.Equal(files.Count, warp.GetProperty("remote_entries").GetInt32());
        Assert.Equal(files.Sum(f => f[1]), warp.GetProperty("remote_bytes").GetInt64());
        Assert.Equal(files.Min(f => f[0]), warp.GetProperty("tar_start").GetInt64());
        Assert.Equal(files.Max(f => f[0] + f[1]), warp.GetProperty("tar_end").GetInt64());

        // The metadata is stored contiguously between the 4 KiB header and the index (formats doc §1.6.2).
        var trailer = json.RootElement.GetProperty("trailer");
        Assert.Equal(trailer.GetProperty("index_offset").GetInt64() - 4096, warp.GetProperty("metadata_bytes").GetInt64());
        Assert.Equal(json.RootElement.GetProperty("index").GetProperty("real").GetInt64(),
            warp.GetProperty("metadata_entries").GetInt32() + warp.GetProperty("remote_entries").GetInt32());
    }

    [Fact]
    public void Inspect_still_refuses_a_plain_layer_whose_entry_points_past_its_data()
    {
        // An ordinary commit with one data entry moved beyond the index: no tag says "remote", so it is damage, not a warp file.
        var damaged = File.ReadAllBytes(Reference("l1.commit"));
        var indexOffset = (int)BitConverter.ToUInt64(damaged, damaged.Length - 4096 + 32);
        BitConverter.TryWriteBytes(damaged.AsSpan(indexOffset + 8, 8), BitConverter.ToUInt64(damaged, indexOffset + 8) + 100_000);
        File.WriteAllBytes(_temp.File("bad"), damaged);
        var (code, _, stderr) = CliRunner.Run("layer", "inspect", _temp.File("bad"));
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Contains("LSMT: index.moffset", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Export_writes_a_sparse_image_of_the_stack()
    {
        var image = _temp.File("disk.img");
        AssertOk(CliRunner.Run("export", image, Reference("l1.commit"), Reference("l2.commit.lz4")));
        Assert.Equal(1L << 30, new FileInfo(image).Length);
        using (var stream = File.OpenRead(image))
        {
            Assert.Equal(Layers12Sha256, Convert.ToHexStringLower(SHA256.HashData(stream)));
        }

        // Sparse: only the ~330 KB of data is allocated (du counts 512-byte blocks).
        var du = Tool.RunChecked("du", "--block-size=1", image);
        Assert.True(long.Parse(du.Stdout.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture) < 4 << 20, du.Stdout);
    }

    [Fact]
    public void Damaged_layer_exits_2_naming_the_format_and_field()
    {
        var damaged = File.ReadAllBytes(Reference("l2.commit"));
        damaged[damaged.Length - 4096 + 28] ^= 0x04; // clear the trailer's sealed bit
        File.WriteAllBytes(_temp.File("bad"), damaged);
        var (code, _, stderr) = CliRunner.Run("export", _temp.File("img"), _temp.File("bad"));
        Assert.Equal(ExitCodes.BadData, code);
        Assert.Contains("LSMT: trailer.flags at offset 29212", stderr);
        Assert.False(File.Exists(_temp.File("img")));
    }

    public void Dispose() => _temp.Dispose();
}
