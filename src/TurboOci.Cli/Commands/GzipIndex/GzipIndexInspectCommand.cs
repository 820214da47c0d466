using System.Text.Json;
using System.Text.Json.Nodes;
using CommandLine;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.GzipIndex;

/// <summary><c>turbooci gzindex inspect INDEX.meta [--json]</c>.</summary>
[VerbGroup("gzindex", GzipIndexCommandSupport.GroupHelp)]
[Verb("inspect", HelpText = "Show an index's header and access points (after checking its CRC and entry table).")]
public sealed class GzipIndexInspectCommand : ICommand
{
    [Value(0, MetaName = "INDEX.meta", Required = true, HelpText = "The index (gzip.meta).")]
    public string Index { get; set; } = string.Empty;

    [Option("json", HelpText = "Print JSON instead of text.")]
    public bool Json { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        using var source = FileBlockSource.OpenRead(Index);
        var index = GzipSeekIndex.Load(source, SystemZlib.Instance);
        var h = index.Header;
        if (Json)
        {
            var entries = new JsonArray();
            foreach (var e in index.Entries)
            {
                entries.Add(new JsonObject { ["de_pos"] = e.DePos, ["en_pos"] = e.EnPos, ["win_pos"] = e.WinPos, ["bits"] = e.Bits, ["win_len"] = e.WinLen });
            }

            var root = new JsonObject
            {
                ["major_version"] = h.MajorVersion,
                ["minor_version"] = h.MinorVersion,
                ["dict_compress_algo"] = h.DictCompressAlgo,
                ["dict_compress_level"] = h.DictCompressLevel,
                ["flag"] = h.Flag,
                ["span"] = h.Span,
                ["window"] = h.Window,
                ["index_size"] = h.IndexSize,
                ["index_num"] = h.IndexNum,
                ["gzip_file_size"] = h.GzipFileSize,
                ["index_file_size"] = h.IndexFileSize,
                ["uncompress_file_size"] = h.UncompressFileSize,
                ["index_start"] = h.IndexStart,
                ["index_area_len"] = h.IndexAreaLen,
                ["crc"] = $"0x{h.Crc:x8}",
                ["entries"] = entries,
            };
            Console.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return Task.FromResult(ExitCodes.Success);
        }

        Console.WriteLine($"{Index}: ddgzidx {h.MajorVersion}.{h.MinorVersion}, CRC-32C 0x{h.Crc:x8} ok");
        Console.WriteLine($"  windows          {(h.DictCompressAlgo == 1 ? $"zlib level {h.DictCompressLevel}" : "raw")}, {h.Window} bytes; span {h.Span}; flag {h.Flag}{((h.Flag & 1) != 0 ? " (multi-member, all members indexed)" : string.Empty)}");
        Console.WriteLine($"  sizes            gzip {h.GzipFileSize}, uncompressed {h.UncompressFileSize}, index {h.IndexFileSize}");
        Console.WriteLine($"  entries          {h.IndexNum} × {h.IndexSize} bytes at {h.IndexStart} ({h.IndexAreaLen} bytes stored)");
        Console.WriteLine($"  {"de_pos",14} {"en_pos",14} {"win_pos",10} {"bits",4} {"win_len",7}");
        foreach (var e in index.Entries)
        {
            Console.WriteLine($"  {e.DePos,14} {e.EnPos,14} {e.WinPos,10} {e.Bits,4} {e.WinLen,7}");
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
