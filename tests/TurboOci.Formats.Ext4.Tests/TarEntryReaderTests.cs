using System.Formats.Tar;
using System.Text;
using TurboOci.Formats.Ext4.Tar;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>Our offset-tracking tar reader against archives written by .NET's TarWriter and by GNU tar.</summary>
public class TarEntryReaderTests
{
    [Fact]
    public void PaxRecordsOverrideTheHeaderAndDataOffsetsAreExact()
    {
        var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            var file = new PaxTarEntry(TarEntryType.RegularFile, "dir/" + new string('p', 150), new Dictionary<string, string>
            {
                ["SCHILY.xattr.user.name"] = "value",
            })
            {
                DataStream = new MemoryStream("payload"u8.ToArray()),
                Uid = 3_000_000, // over 8^7: the writer must use a PAX uid record
                ModificationTime = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_250),
            };
            writer.WriteEntry(file);
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "link") { LinkName = new string('t', 130) });
        }

        var tar = output.ToArray();
        var reader = new TarEntryReader(new MemoryStream(tar));
        var first = reader.Next()!;
        Assert.Equal("dir/" + new string('p', 150), first.Path);
        Assert.Equal(3_000_000, first.Uid);
        Assert.Equal(new OnDisk.Ext4Time(1_700_000_000, 250_000_000), first.Mtime);
        Assert.Equal("value"u8.ToArray(), first.Xattrs["user.name"]);
        Assert.Equal("payload", Encoding.ASCII.GetString(tar, (int)first.DataOffset, 7));
        var second = reader.Next()!;
        Assert.Equal(TarMemberType.Symlink, second.Type);
        Assert.Equal(new string('t', 130), second.LinkTarget);
        Assert.Null(reader.Next());
        Assert.Equal(tar.Length, reader.Position);
    }

    [Fact]
    public void GnuLongNamesAndBase256NumbersAreRead()
    {
        using var dir = new TurboOci.Testing.TempDir();
        var longName = new string('g', 180);
        File.WriteAllText(Path.Combine(dir.Path, longName), "gnu");
        File.CreateSymbolicLink(Path.Combine(dir.Path, "l"), new string('k', 120));
        var tarPath = Path.Combine(dir.Path, "out.tar");
        TurboOci.Testing.Tool.RunChecked("tar", "--format=gnu", "--owner=:9999999", "--group=:0", "-cf", tarPath, "-C", dir.Path, longName, "l");

        var tar = File.ReadAllBytes(tarPath);
        var reader = new TarEntryReader(new MemoryStream(tar));
        var file = reader.Next()!;
        Assert.Equal(longName, file.Path);
        Assert.Equal(9_999_999, file.Uid); // over 8^7: only base-256 can hold it in GNU format
        Assert.Equal("gnu", Encoding.ASCII.GetString(tar, (int)file.DataOffset, 3));
        Assert.Equal(new string('k', 120), reader.Next()!.LinkTarget);
        Assert.Null(reader.Next());
    }

    [Fact]
    public void UnsupportedEntryTypesNameTheEntry()
    {
        using var dir = new TurboOci.Testing.TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "f"), "x");
        var tarPath = Path.Combine(dir.Path, "out.tar");
        TurboOci.Testing.Tool.RunChecked("tar", "--format=gnu", "-V", "a-volume-label", "-cf", tarPath, "-C", dir.Path, "f");

        var error = Assert.Throws<TurboOciFormatException>(() => new TarEntryReader(new MemoryStream(File.ReadAllBytes(tarPath))).Next());
        Assert.Contains("a-volume-label", error.Message);
        Assert.Equal(156, error.Offset);
    }
}
