using System.Diagnostics;
using TurboOci.Formats.GzipIndex;
using TurboOci.Interop.Zlib;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.GzipIndex;

/// <summary>What the gzindex verbs share: the group help, opening blob + index (+ spans), progress.</summary>
internal static class GzipIndexCommandSupport
{
    public const string GroupHelp = "Build, read and check gzip seek indexes (overlaybd's ddgzidx gzip.meta) for random access into unmodified .tar.gz layers.";

    /// <summary>The default spans file beside an index: gzip.meta → gzip.spans, x.gz_idx → x.gz_idx.spans.</summary>
    public static string DefaultSpansPath(string indexPath) =>
        indexPath.EndsWith(".meta", StringComparison.Ordinal) ? indexPath[..^".meta".Length] + ".spans" : indexPath + ".spans";

    /// <summary>"65536", "64K", "1M", "4MiB".</summary>
    public static int ParseSize(string text)
    {
        var value = text.Trim();
        long multiplier = 1;
        foreach (var (suffix, factor) in new (string, long)[] { ("MiB", 1 << 20), ("M", 1 << 20), ("m", 1 << 20), ("KiB", 1 << 10), ("K", 1 << 10), ("k", 1 << 10) })
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal))
            {
                value = value[..^suffix.Length];
                multiplier = factor;
                break;
            }
        }

        if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number) || number * multiplier > int.MaxValue)
        {
            throw new ArgumentException($"'{text}' is not a size (bytes, or with K/M suffix)");
        }

        return (int)(number * multiplier);
    }

    /// <summary>An opened blob + index (+ span digests) and the reader over them, disposed together.</summary>
    public sealed class Opened(FileBlockSource blob, FileBlockSource index, GzipIndexedSource reader, bool hasDigests) : IDisposable
    {
        public GzipIndexedSource Reader => reader;

        public bool HasDigests => hasDigests;

        public void Dispose()
        {
            reader.Dispose();
            index.Dispose();
            blob.Dispose();
        }
    }

    /// <summary>Opens a gzip blob with its index; uses <paramref name="spansPath"/>, or the default spans file beside the index when it exists.</summary>
    public static Opened Open(string blobPath, string indexPath, string? spansPath, GzipReaderOptions? options = null)
    {
        var blob = FileBlockSource.OpenRead(blobPath);
        FileBlockSource? index = null;
        try
        {
            index = FileBlockSource.OpenRead(indexPath);
            var parsed = GzipSeekIndex.Load(index, SystemZlib.Instance);
            spansPath ??= File.Exists(DefaultSpansPath(indexPath)) ? DefaultSpansPath(indexPath) : null;
            GzipSpanDigests? digests = null;
            if (spansPath is not null)
            {
                using var spans = FileBlockSource.OpenRead(spansPath);
                digests = GzipSpanDigests.Read(spans);
            }

            var reader = new GzipIndexedSource(blob, parsed, SystemZlib.Instance, digests, options);
            return new Opened(blob, index, reader, digests is not null);
        }
        catch
        {
            index?.Dispose();
            blob.Dispose();
            throw;
        }
    }

    /// <summary>Reads [<paramref name="from"/>, <paramref name="to"/>) in large chunks (so spans inflate in parallel), handing each chunk to <paramref name="sink"/>.</summary>
    public static void Stream(GzipIndexedSource reader, long from, long to, string label, Action<ReadOnlySpan<byte>> sink, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 << 20];
        using var progress = new Progress(label, to - from);
        for (var pos = from; pos < to;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var read = reader.ReadAt(pos, buffer.AsSpan(0, (int)Math.Min(buffer.Length, to - pos)));
            if (read == 0)
            {
                throw new EndOfStreamException($"the uncompressed stream ended at {pos}, before {to}");
            }

            sink(buffer.AsSpan(0, read));
            pos += read;
            progress.Report(pos - from);
        }
    }

    /// <summary>A one-line progress meter on stderr, only when stderr is a terminal.</summary>
    public sealed class Progress(string label, long total) : IDisposable
    {
        private readonly bool _enabled = !Console.IsErrorRedirected && total > 0;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _lastDraw;

        public void Report(long done)
        {
            if (!_enabled || _clock.ElapsedMilliseconds - _lastDraw < 200)
            {
                return;
            }

            _lastDraw = _clock.ElapsedMilliseconds;
            Console.Error.Write($"\r{label}: {100.0 * done / total,5:F1}% ({done >> 20} of {total >> 20} MiB)");
        }

        public void Dispose()
        {
            if (_enabled)
            {
                Console.Error.Write("\r" + new string(' ', 60) + "\r");
            }
        }
    }
}
