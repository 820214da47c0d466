using System.Buffers.Binary;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Formats.Lsmt.Tests;

/// <summary>
/// Damaged layers give a clear error naming the format, the field and its absolute offset: truncated at every section
/// boundary, flipped bits in header, trailer and index, impossible lengths and offsets. Built from l2.commit
/// (33280 bytes: header, data from 4096, index at 25088, trailer at 29184).
/// </summary>
public sealed class DamagedLayerTests
{
    private const int Trailer = 29184;
    private const int Index = 25088;

    public static TheoryData<string, string, long> Damages() => new()
    {
        { "truncate:0", "file", 0 },
        { "truncate:4095", "file", 4095 },
        { "truncate:8191", "file", 8191 },
        { "truncate:25088", "trailer.magic0", 25088 - 4096 },
        { "truncate:29184", "trailer.magic0", 29184 - 4096 },
        { "truncate:33279", "trailer.magic0", 33279 - 4096 },
        { "flip:0", "header.magic0", 0 },
        { "flip:9", "header.magic1", 8 },
        { "flip:28:1", "header.flags", 28 },
        { "flip:28:2", "header.flags", 28 },
        { "flip:29184", "trailer.magic0", Trailer },
        { "flip:29212:1", "trailer.flags", Trailer + 28 },
        { "flip:29212:4", "trailer.flags", Trailer + 28 },
        { "u64:29224:1000001", "trailer.index_size", Trailer + 40 },
        { "u64:29224:257", "trailer.index_offset", Trailer + 32 },
        { "u64:29216:9223372036854775808", "trailer.index_offset", Trailer + 32 },
        { "u64:29216:29000", "trailer.index_offset", Trailer + 32 },
        { "u64:29232:18446744073709551615", "trailer.virtual_size", Trailer + 48 },
        { "moffset:1:60", "index.moffset", Index + 16 },
        { "moffset:0:7", "index.moffset", Index },
        { "swap:0:1", "index", Index },
    };

    /// <summary>Applies a damage described as "kind:args" to a copy of l2.commit.</summary>
    internal static byte[] Damage(string spec)
    {
        var bytes = LsmtFixtures.Bytes("l2.commit");
        var parts = spec.Split(':');
        var at = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        switch (parts[0])
        {
            case "truncate":
                return bytes[..at];
            case "flip":
                bytes[at] ^= parts.Length > 2 ? byte.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture) : (byte)0x01;
                return bytes;
            case "u64":
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), ulong.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
                return bytes;
            case "moffset":
                var entry = SegmentMapping.Read(bytes.AsSpan(Index + (at * 16)));
                new SegmentMapping(entry.Offset, entry.Length, ulong.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture) * 4096 / 512 / 8, entry.Zeroed)
                    .Write(bytes.AsSpan(Index + (at * 16)));
                return bytes;
            case "swap":
                var other = int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
                var a = bytes.AsSpan(Index + (at * 16), 16).ToArray();
                bytes.AsSpan(Index + (other * 16), 16).CopyTo(bytes.AsSpan(Index + (at * 16)));
                a.CopyTo(bytes.AsSpan(Index + (other * 16)));
                return bytes;
            default:
                throw new ArgumentException(spec);
        }
    }

    [Theory]
    [MemberData(nameof(Damages))]
    public void Damaged_committed_layer_is_refused_naming_field_and_offset(string damage, string field, long offset)
    {
        var error = Assert.Throws<TurboOciFormatException>(() => CommittedLayer.Open(new MemoryBlockSource(Damage(damage))));
        Assert.Equal("LSMT", error.Format);
        Assert.Equal(field, error.Field);
        Assert.Equal(offset, error.Offset);
        Assert.Contains(field, error.Message);
    }

    [Fact]
    public void A_zfile_is_not_mistaken_for_a_bare_lsmt_file()
    {
        var error = Assert.Throws<TurboOciFormatException>(() => CommittedLayer.Open(FileBlockSource.OpenRead(LsmtFixtures.Path("l1.commit.lz4")), ownsFile: true));
        Assert.Contains("ZFile", error.Problem);
    }

    [Fact]
    public void A_corrupt_compressed_block_fails_the_read_not_the_data()
    {
        var bytes = LsmtFixtures.Bytes("l1.commit.lz4");
        bytes[2000] ^= 0x20; // inside the first compressed blocks (layer data at offset 0)
        using var layer = LayerBlob.Open(new MemoryBlockSource(bytes));
        var error = Assert.Throws<TurboOciFormatException>(() => layer.ReadExactlyAt(0, new byte[65536]));
        Assert.Equal("ZFile", error.Format);
    }

    [Fact]
    public void Damaged_rw_index_files_are_refused()
    {
        using var temp = new TempDir();
        var data = LsmtFixtures.CopyToTemp(temp, "l1.rw.data");
        var good = LsmtFixtures.Bytes("l1.rw.index");

        void Expect(string name, Func<byte[], byte[]> damage, string field)
        {
            var bytes = damage((byte[])good.Clone());
            var index = temp.File(name);
            File.WriteAllBytes(index, bytes);
            var error = Assert.Throws<TurboOciFormatException>(() => WritableLayer.Open(data, index).Dispose());
            Assert.Equal(field, error.Field);
        }

        static Func<byte[], byte[]> Edit(Action<byte[]> edit) => b =>
        {
            edit(b);
            return b;
        };

        Expect("magic", Edit(b => b[3] ^= 1), "index.header.magic0");
        Expect("data-bit", Edit(b => b[28] |= 2), "index.header.flags");
        Expect("sealed", Edit(b => b[28] |= 4), "index.header.flags");
        Expect("offset", Edit(b => b[33] = 0x20), "index.header.index_offset");
        Expect("short", b => b[..100], "index.header");

        // An entry pointing past the end of the data file.
        Expect("moffset", Edit(b => new SegmentMapping(0, 8, 100000).Write(b.AsSpan(4096))), "index.moffset");
    }

    [Fact]
    public void A_torn_last_index_entry_is_ignored_and_overwritten_by_the_next_write()
    {
        using var temp = new TempDir();
        var data = LsmtFixtures.CopyToTemp(temp, "l1.rw.data");
        var index = temp.File("index");
        File.WriteAllBytes(index, [.. LsmtFixtures.Bytes("l1.rw.index"), .. new byte[7]]);
        using (var layer = WritableLayer.Open(data, index))
        {
            Assert.Equal(LsmtFixtures.Layer1Sha256, LsmtFixtures.Sha256(layer));
            layer.WriteAt(0, new byte[512]);
        }

        Assert.Equal(4096 + (7 * 16), new FileInfo(index).Length);
    }
}
