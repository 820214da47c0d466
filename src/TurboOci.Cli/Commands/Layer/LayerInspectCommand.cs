using System.Text.Json;
using CommandLine;
using TurboOci.Formats.Lsmt;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci layer inspect FILE</c>: header, trailer and index summary of any LSMT file or layer blob.</summary>
[VerbGroup("layer", LayerCommandSupport.GroupHelp)]
[Verb("inspect", HelpText = "Show an LSMT file's header, trailer and index summary: a layer blob (tar/ZFile/LSMT), an RW data file or an RW index file.")]
public sealed class LayerInspectCommand : ICommand
{
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    [Value(0, MetaName = "FILE", Required = true, HelpText = "The file to inspect.")]
    public string File { get; set; } = string.Empty;

    [Option("json", HelpText = "Print one JSON object instead of text (snake_case keys, sizes in bytes, index offsets in bytes).")]
    public bool Json { get; set; }

    [Option("warp", HelpText = "The file is a TurboOCI warp layer (e.g. ext4.fs.meta): keep its tags (1 = data in the original tar) and skip the mapped-range check.")]
    public bool Warp { get; set; }

    [Option("entries", HelpText = "Also list every index entry (offset, length, moffset in bytes; zeroed; tag).")]
    public bool Entries { get; set; }

    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var report = Inspect();
        if (Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(report, s_json));
        }
        else
        {
            PrintText(report);
        }

        return Task.FromResult(ExitCodes.Success);
    }

    private InspectReport Inspect()
    {
        // A writable layer's files have only a header; committed blobs have a trailer and may be wrapped.
        var block = new byte[LsmtConstants.HeaderBlockSize];
        using (var raw = FileBlockSource.OpenRead(File))
        {
            if (raw.ReadAt(0, block) == block.Length && LsmtHeader.HasMagic(block))
            {
                var header = LsmtHeader.Read(block, 0, "header");
                if (!header.IsDataFile)
                {
                    var count = (raw.Size - LsmtConstants.HeaderBlockSize) / SegmentMapping.Size;
                    var entries = new byte[Math.Min(count, 1 << 20) * SegmentMapping.Size];
                    raw.ReadExactlyAt(LsmtConstants.HeaderBlockSize, entries);
                    var log = SegmentMapping.ReadAll(entries);
                    return new InspectReport("rw-index", raw.Size, null, View(header), null,
                        Summary(log.Where(e => !e.IsPadding).ToArray(), count, padding: log.Count(e => e.IsPadding)), Entries ? log.Select(View).ToList() : null);
                }

                if (!IsSealed(raw))
                {
                    return new InspectReport("rw-data", raw.Size, null, View(header), null, null, null);
                }
            }
        }

        // A warp file's tag-1 entries point into the original tar; inspecting reads only the index, so no target is needed.
        using var noTarget = new ZeroBlockSource(0);
        using var layer = LayerBlob.Open(FileBlockSource.OpenRead(File), out var shape, Warp ? noTarget : null, ownsBlob: true);
        var real = layer.Index.Entries.ToArray();
        return new InspectReport("committed", new FileInfo(File).Length, shape.ToString(), View(layer.Header), View(layer.Trailer),
            Summary(real, (long)layer.Trailer.IndexSize, padding: (long)layer.Trailer.IndexSize - real.Length), Entries ? real.Select(View).ToList() : null);
    }

    private static bool IsSealed(FileBlockSource raw)
    {
        if (raw.Size < 2 * LsmtConstants.HeaderBlockSize)
        {
            return false;
        }

        var block = new byte[LsmtConstants.HeaderBlockSize];
        raw.ReadExactlyAt(raw.Size - block.Length, block);
        return LsmtHeader.HasMagic(block) && !LsmtHeader.Read(block, raw.Size - block.Length, "trailer").IsHeader;
    }

    private static HeaderView View(LsmtHeader h) =>
        new($"0x{(uint)h.Flags:X2}", h.IsHeader ? "header" : "trailer", h.IsDataFile ? "data" : "index", h.IsSealed, h.IsSparse,
            h.IndexOffset, h.IndexSize, h.VirtualSize, h.Uuid, h.ParentUuid, h.UserTagText);

    private static EntryView View(SegmentMapping e) =>
        e.IsPadding ? new EntryView(null, 0, 0, false, e.Tag, Padding: true)
                    : new EntryView(e.Offset * 512, (ulong)e.Length * 512, e.MappedOffset * 512, e.Zeroed, e.Tag, Padding: false);

    private static IndexSummary Summary(SegmentMapping[] real, long declared, long padding) => new(
        declared,
        real.Length,
        padding,
        real.Count(e => !e.Zeroed),
        real.Count(e => e.Zeroed),
        real.Where(e => !e.Zeroed).Sum(e => (long)e.Length) * 512,
        real.Where(e => e.Zeroed).Sum(e => (long)e.Length) * 512,
        real.Length == 0 ? 0 : real.Max(e => e.Length),
        real.Select(e => (int)e.Tag).Distinct().Order().ToArray());

    private static void PrintText(InspectReport r)
    {
        Console.WriteLine($"{r.Kind} ({r.FileSize} bytes){(r.Shape is null ? string.Empty : $": {r.Shape}")}");
        PrintHeader("header", r.Header);
        if (r.Trailer is not null)
        {
            PrintHeader("trailer", r.Trailer);
        }

        if (r.Index is { } i)
        {
            Console.WriteLine($"index: {i.Declared} entries declared, {i.Real} real ({i.DataEntries} data, {i.ZeroedEntries} zeroed), {i.Padding} padding");
            Console.WriteLine($"  data {i.DataBytes} bytes, zeroed {i.ZeroedBytes} bytes, longest entry {i.LongestSectors} sectors, tags [{string.Join(", ", i.Tags)}]");
        }

        foreach (var e in r.Entries ?? [])
        {
            Console.WriteLine(e.Padding ? "  padding" : $"  off={e.Offset} len={e.Length} moff={e.MappedOffset}{(e.Zeroed ? " zeroed" : string.Empty)}{(e.Tag != 0 ? $" tag={e.Tag}" : string.Empty)}");
        }
    }

    private static void PrintHeader(string label, HeaderView h) =>
        Console.WriteLine($"{label}: flags {h.Flags} ({h.Block}, {h.File} file{(h.Sealed ? ", sealed" : string.Empty)}{(h.Sparse ? ", sparse" : string.Empty)}), " +
                          $"index_offset {h.IndexOffset}, index_size {h.IndexSize}, virtual_size {h.VirtualSize}, uuid {h.Uuid}, parent {h.ParentUuid}" +
                          (h.Tag.Length > 0 ? $", tag \"{h.Tag}\"" : string.Empty));

    private sealed record InspectReport(string Kind, long FileSize, string? Shape, HeaderView Header, HeaderView? Trailer, IndexSummary? Index, List<EntryView>? Entries);

    private sealed record HeaderView(string Flags, string Block, string File, bool Sealed, bool Sparse, ulong IndexOffset, ulong IndexSize, ulong VirtualSize, string Uuid, string ParentUuid, string Tag);

    private sealed record IndexSummary(long Declared, long Real, long Padding, int DataEntries, int ZeroedEntries, long DataBytes, long ZeroedBytes, uint LongestSectors, int[] Tags);

    private sealed record EntryView(ulong? Offset, ulong Length, ulong MappedOffset, bool Zeroed, byte Tag, bool Padding);
}
