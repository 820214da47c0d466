using System.Text.Json;
using CommandLine;
using TurboOci.Formats.Lsmt;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.Layer;

/// <summary><c>turbooci layer inspect FILE</c>: header, trailer and index summary of any LSMT file or layer blob.</summary>
[VerbGroup("layer", LayerCommandSupport.GroupHelp)]
[Verb("inspect", HelpText = "Show an LSMT file's header, trailer and index summary: a layer blob (tar/ZFile/LSMT), an RW data file or an RW index file. For a TurboOCI fs-meta (warp layer) also its metadata bytes and the range of the uncompressed tar its remote entries map.")]
public sealed class LayerInspectCommand : ICommand
{
    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    [Value(0, MetaName = "FILE", Required = true, HelpText = "The file to inspect.")]
    public string File { get; set; } = string.Empty;

    [Option("json", HelpText = "Print one JSON object instead of text (snake_case keys, sizes in bytes, index offsets in bytes).")]
    public bool Json { get; set; }

    [Option("warp", HelpText = "Read the file as a TurboOCI warp layer (e.g. ext4.fs.meta): keep its tags (1 = data in the original tar) and skip the mapped-range check. Without it, a committed file is recognised as a warp layer when only its remote entries point past its data (nothing else marks one).")]
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
                        Summary(log.Where(e => !e.IsPadding).ToArray(), count, padding: log.Count(e => e.IsPadding)), null, Entries ? log.Select(View).ToList() : null);
                }

                if (!IsSealed(raw))
                {
                    return new InspectReport("rw-data", raw.Size, null, View(header), null, null, null, null);
                }
            }
        }

        // Inspecting reads only the index, so a warp layer's target (the original tar) is not needed.
        using var noTarget = new ZeroBlockSource(0);
        using var layer = OpenCommitted(noTarget, out var shape);
        var real = layer.Index.Entries.ToArray();
        return new InspectReport("committed", new FileInfo(File).Length, shape.ToString(), View(layer.Header), View(layer.Trailer),
            Summary(real, (long)layer.Trailer.IndexSize, padding: (long)layer.Trailer.IndexSize - real.Length),
            layer.IsWarp ? WarpSummary(real) : null, Entries ? real.Select(View).ToList() : null);
    }

    /// <summary>
    /// Opens a committed blob as a plain layer, or as a warp layer (TurboOCI fs-meta) when --warp says so or when
    /// the file is one. Nothing in a warp file's header or trailer marks it (formats doc §1.6.2: overlaybd knows
    /// from the image config's target), so it is recognised by its index: as a plain layer it fails the
    /// mapped-range check, while its own entries (the smallest tag) all lie in its data area and the others
    /// (the next tag: byte offsets in the uncompressed tar) are what points beyond it.
    /// </summary>
    private CommittedLayer OpenCommitted(BlockSource noTarget, out LayerBlobShape shape)
    {
        if (Warp)
        {
            return OpenBlob(noTarget, out shape);
        }

        try
        {
            return OpenBlob(null, out shape);
        }
        catch (TurboOciFormatException e) when (e.Field == "index.moffset")
        {
            CommittedLayer? warp = null;
            LayerBlobShape? warpShape = null;
            try
            {
                warp = OpenBlob(noTarget, out warpShape);
            }
            catch (TurboOciFormatException)
            {
                // Not a warp layer either: the plain reading's error is the one to report.
            }

            if (warp is not null && warpShape is not null && HasWarpLayout(warp))
            {
                shape = warpShape;
                return warp;
            }

            warp?.Dispose();
            throw;
        }
    }

    private CommittedLayer OpenBlob(BlockSource? warpTarget, out LayerBlobShape shape) =>
        LayerBlob.Open(FileBlockSource.OpenRead(File), out shape, warpTarget, ownsBlob: true);

    /// <summary>At least one remote (tag 1) entry, and every own (tag 0) entry inside [header end, index) as in a committed layer.</summary>
    private static bool HasWarpLayout(CommittedLayer layer)
    {
        var first = (ulong)LsmtConstants.HeaderBlockSize / LsmtConstants.SectorSize;
        var end = layer.Trailer.IndexOffset / LsmtConstants.SectorSize;
        var remote = false;
        foreach (var entry in layer.Index.Entries)
        {
            if (entry.Tag != 0)
            {
                remote = true;
                continue;
            }

            var inside = entry.Zeroed
                ? entry.MappedOffset >= first && entry.MappedOffset <= end
                : entry.MappedOffset >= first && entry.MappedEnd <= end;
            if (!inside)
            {
                return false;
            }
        }

        return remote;
    }

    private static WarpView WarpSummary(SegmentMapping[] real)
    {
        var own = real.Where(e => e.Tag == 0 && !e.Zeroed).ToArray();
        var remote = real.Where(e => e.Tag == 1 && !e.Zeroed).ToArray();
        return new WarpView(
            own.Length,
            own.Sum(e => (long)e.Length) * 512,
            remote.Length,
            remote.Sum(e => (long)e.Length) * 512,
            remote.Length == 0 ? 0 : (long)remote.Min(e => e.MappedOffset) * 512,
            remote.Length == 0 ? 0 : (long)remote.Max(e => e.MappedEnd) * 512);
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

        if (r.Warp is { } w)
        {
            Console.WriteLine($"warp layer (TurboOCI fs-meta): {w.MetadataEntries} metadata entries, {w.MetadataBytes} bytes in this file (tag 0); " +
                              $"{w.RemoteEntries} remote entries, {w.RemoteBytes} bytes mapped to the uncompressed tar [{w.TarStart}, {w.TarEnd}) (tag 1)");
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

    private sealed record InspectReport(string Kind, long FileSize, string? Shape, HeaderView Header, HeaderView? Trailer, IndexSummary? Index, WarpView? Warp,
        List<EntryView>? Entries);

    /// <summary>A warp layer's two halves: metadata stored in this file, and data mapped to [TarStart, TarEnd) of the uncompressed tar.</summary>
    private sealed record WarpView(int MetadataEntries, long MetadataBytes, int RemoteEntries, long RemoteBytes, long TarStart, long TarEnd);

    private sealed record HeaderView(string Flags, string Block, string File, bool Sealed, bool Sparse, ulong IndexOffset, ulong IndexSize, ulong VirtualSize, string Uuid, string ParentUuid, string Tag);

    private sealed record IndexSummary(long Declared, long Real, long Padding, int DataEntries, int ZeroedEntries, long DataBytes, long ZeroedBytes, uint LongestSectors, int[] Tags);

    private sealed record EntryView(ulong? Offset, ulong Length, ulong MappedOffset, bool Zeroed, byte Tag, bool Padding);
}
