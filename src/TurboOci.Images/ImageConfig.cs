using System.Text.Json;
using TurboOci.Storage;

namespace TurboOci.Images;

/// <summary>
/// overlaybd's per-device image config, <c>config.v1.json</c>: the layer stack of one device. The same
/// keys as overlaybd's snapshotter writes, so stacks made by either work in the other. Unknown keys
/// are ignored, as overlaybd ignores them (the snapshotter adds e.g. <c>imageRef</c>).
/// </summary>
public sealed record ImageConfig
{
    public const string FormatName = "config.v1.json";

    /// <summary>The most lowers a stack may have: overlaybd stacks at most 255 layers and so do we.</summary>
    public const int MaxLowers = 255;

    /// <summary>The largest config we read; real ones are a few KiB.</summary>
    public const int MaxFileSize = 16 << 20;

    /// <summary>Base URL of the repository's blobs, such as <c>https://reg/v2/ns/repo/blobs</c>.</summary>
    public string RepoBlobUrl { get; init; } = "";

    /// <summary>Read-only layers, bottom first.</summary>
    public IReadOnlyList<LowerLayer> Lowers { get; init; } = [];

    /// <summary>The writable top layer, or null for a read-only device.</summary>
    public UpperLayer? Upper { get; init; }

    /// <summary>Written after device creation: <c>success</c> or <c>failed:&lt;reason&gt;</c>.</summary>
    public string ResultFile { get; init; } = "";

    /// <summary>The last lower is an acceleration (trace) layer, not data.</summary>
    public bool AccelerationLayer { get; init; }

    public string RecordTracePath { get; init; } = "";

    public static ImageConfig Load(string path)
    {
        var info = new FileInfo(path);
        if (info.Exists && info.Length > MaxFileSize)
        {
            TurboOciFormatException.Throw(FormatName, "/", 0, $"{path} is {info.Length} bytes, more than the {MaxFileSize} a config may have");
        }

        var config = Parse(File.ReadAllBytes(path));
        return config.ResolveRelativeTo(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static ImageConfig Parse(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxFileSize)
        {
            TurboOciFormatException.Throw(FormatName, "/", 0, $"{utf8.Length} bytes, more than the {MaxFileSize} a config may have");
        }

        var root = JsonNodeAt.Parse(utf8, FormatName);
        if (root.Kind != JsonValueKind.Object)
        {
            TurboOciFormatException.Throw(FormatName, "/", root.Offset, "the document must be a JSON object");
        }

        var lowers = new List<LowerLayer>();
        if (root.GetArray("lowers", FormatName) is { } array)
        {
            if (array.Items.Count > MaxLowers)
            {
                TurboOciFormatException.Throw(FormatName, "/lowers", array.Offset, $"{array.Items.Count} layers, more than {MaxLowers}");
            }

            foreach (var item in array.Items)
            {
                if (item.Kind != JsonValueKind.Object)
                {
                    TurboOciFormatException.Throw(FormatName, item.Pointer, item.Offset, "each lower must be an object");
                }

                lowers.Add(new LowerLayer
                {
                    File = item.GetString("file", FormatName),
                    Dir = item.GetString("dir", FormatName),
                    Digest = item.GetString("digest", FormatName),
                    Size = item.GetInteger("size", FormatName, 0, 0, long.MaxValue),
                    TargetFile = item.GetString("targetFile", FormatName),
                    TargetDigest = item.GetString("targetDigest", FormatName),
                    GzipIndex = item.GetString("gzipIndex", FormatName),
                    SpanDigests = item.GetString("gzipSpans", FormatName),
                });
            }
        }

        UpperLayer? upper = null;
        if (root.GetObject("upper", FormatName) is { } u)
        {
            var candidate = new UpperLayer
            {
                Index = u.GetString("index", FormatName),
                Data = u.GetString("data", FormatName),
                Target = u.GetString("target", FormatName),
                GzipIndex = u.GetString("gzipIndex", FormatName),
            };

            // overlaybd uses the upper only when both index and data are set.
            upper = candidate.Index.Length > 0 && candidate.Data.Length > 0 ? candidate : null;
        }

        return new ImageConfig
        {
            RepoBlobUrl = root.GetString("repoBlobUrl", FormatName),
            Lowers = lowers,
            Upper = upper,
            ResultFile = root.GetString("resultFile", FormatName),
            AccelerationLayer = root.GetBool("accelerationLayer", FormatName),
            RecordTracePath = root.GetString("recordTracePath", FormatName),
        };
    }

    /// <summary>Relative local paths are taken relative to the config's folder, so a stack folder can move.</summary>
    public ImageConfig ResolveRelativeTo(string directory)
    {
        string Resolve(string p) => p.Length == 0 || Path.IsPathRooted(p) ? p : Path.GetFullPath(Path.Combine(directory, p));
        return this with
        {
            Lowers = Lowers.Select(l => l with
            {
                File = Resolve(l.File),
                Dir = Resolve(l.Dir),
                TargetFile = Resolve(l.TargetFile),
                GzipIndex = Resolve(l.GzipIndex),
                SpanDigests = Resolve(l.SpanDigests),
            }).ToList(),
            Upper = Upper is null ? null : Upper with
            {
                Index = Resolve(Upper.Index),
                Data = Resolve(Upper.Data),
                Target = Resolve(Upper.Target),
                GzipIndex = Resolve(Upper.GzipIndex),
            },
            ResultFile = Resolve(ResultFile),
        };
    }

    /// <summary>Writes the config with overlaybd's key names, omitting empty values.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            WriteIfSet(w, "repoBlobUrl", RepoBlobUrl);
            w.WriteStartArray("lowers");
            foreach (var l in Lowers)
            {
                w.WriteStartObject();
                WriteIfSet(w, "file", l.File);
                WriteIfSet(w, "dir", l.Dir);
                WriteIfSet(w, "digest", l.Digest);
                if (l.Size > 0)
                {
                    w.WriteNumber("size", l.Size);
                }

                WriteIfSet(w, "targetFile", l.TargetFile);
                WriteIfSet(w, "targetDigest", l.TargetDigest);
                WriteIfSet(w, "gzipIndex", l.GzipIndex);
                WriteIfSet(w, "gzipSpans", l.SpanDigests);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            if (Upper is { } u)
            {
                w.WriteStartObject("upper");
                WriteIfSet(w, "index", u.Index);
                WriteIfSet(w, "data", u.Data);
                WriteIfSet(w, "target", u.Target);
                WriteIfSet(w, "gzipIndex", u.GzipIndex);
                w.WriteEndObject();
            }

            WriteIfSet(w, "resultFile", ResultFile);
            if (AccelerationLayer)
            {
                w.WriteBoolean("accelerationLayer", true);
            }

            WriteIfSet(w, "recordTracePath", RecordTracePath);
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteIfSet(Utf8JsonWriter writer, string key, string value)
    {
        if (value.Length > 0)
        {
            writer.WriteString(key, value);
        }
    }
}

/// <summary>One read-only layer of a stack.</summary>
public sealed record LowerLayer
{
    /// <summary>Local path of the layer blob (tar envelope, ZFile or LSMT).</summary>
    public string File { get; init; } = "";

    /// <summary>Layer directory: where overlaybd looks for <c>overlaybd.commit</c> and downloads to.</summary>
    public string Dir { get; init; } = "";

    /// <summary><c>sha256:&lt;hex&gt;</c> of the layer blob, for remote fetch.</summary>
    public string Digest { get; init; } = "";

    public long Size { get; init; }

    /// <summary>TurboOCI: local path of the original layer blob (tar.gz), read raw.</summary>
    public string TargetFile { get; init; } = "";

    /// <summary>TurboOCI: digest of the original layer blob, fetched from the repository.</summary>
    public string TargetDigest { get; init; } = "";

    /// <summary>TurboOCI: local path of the gzip index (<c>gzip.meta</c>).</summary>
    public string GzipIndex { get; init; } = "";

    /// <summary>Our extension (<c>gzipSpans</c>): span digests that verify every fetched range; overlaybd ignores the key.</summary>
    public string SpanDigests { get; init; } = "";

    /// <summary>Whether this is a TurboOCI warp layer whose file data lives in an original tar blob.</summary>
    public bool IsTurboOci => TargetFile.Length > 0 || TargetDigest.Length > 0;
}

/// <summary>The writable top layer: an LSMT data + index pair, or a writable warp layer during conversion.</summary>
public sealed record UpperLayer
{
    public string Index { get; init; } = "";

    public string Data { get; init; } = "";

    public string Target { get; init; } = "";

    public string GzipIndex { get; init; } = "";
}
