using System.Diagnostics;
using System.Globalization;
using TurboOci.Formats.ZFile;
using TurboOci.Storage;

namespace TurboOci.Cli.Commands.ZFile;

/// <summary>What the zfile verbs share: the group help, opening a possibly tar-wrapped ZFile, progress, block sizes.</summary>
internal static class ZFileCommandSupport
{
    public const string GroupHelp = "Compress, decompress and check overlaybd ZFiles (seekable LZ4/zstd blocks with CRC-32C).";

    /// <summary>An opened ZFile and what it was opened from, disposed together.</summary>
    public sealed class OpenedZFile(FileBlockSource file, SliceBlockSource? tarPayload, ZFileReader reader) : IDisposable
    {
        public ZFileReader Reader => reader;

        /// <summary>Where the ZFile starts inside a tar envelope, or null when the file is a bare ZFile.</summary>
        public long? TarPayloadOffset => tarPayload?.Start;

        public void Dispose()
        {
            reader.Dispose();
            tarPayload?.Dispose();
            file.Dispose();
        }
    }

    /// <summary>Opens a ZFile, unwrapping overlaybd's tar envelope first when there is one.</summary>
    public static OpenedZFile Open(string path, bool verifyChecksums = true)
    {
        var file = FileBlockSource.OpenRead(path);
        try
        {
            BlockSource payload = file;
            SliceBlockSource? slice = null;
            if (TarEnvelope.TryOpen(file, out slice))
            {
                payload = slice;
            }

            return new OpenedZFile(file, slice, ZFileReader.Open(payload, verifyChecksums));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>"4096", "4K", "4k", "4KiB", "64K": bytes, or KiB with a suffix.</summary>
    public static int ParseBlockSize(string text)
    {
        var value = text.Trim();
        var kib = false;
        foreach (var suffix in new[] { "KiB", "kib", "KB", "kb", "K", "k" })
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal))
            {
                value = value[..^suffix.Length];
                kib = true;
                break;
            }
        }

        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 1 << 20)
        {
            throw new ArgumentException($"--block-size '{text}' is not a size: give bytes (4096) or KiB (4K)");
        }

        var bytes = kib ? number * 1024 : number;
        if (bytes is < ZFileWriterOptions.MinBlockSize or > ZFileWriterOptions.MaxBlockSize || (bytes & (bytes - 1)) != 0)
        {
            var hint = !kib && number is >= 4 and <= 64 ? $" (did you mean {number}K?)" : string.Empty;
            throw new ArgumentException($"--block-size {text} must be 4K, 8K, 16K, 32K or 64K{hint}");
        }

        return bytes;
    }

    public static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.00} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    /// <summary>A percentage on stderr, redrawn at most 10 times a second, only when stderr is a terminal.</summary>
    public sealed class Progress(string label, long total) : IDisposable
    {
        private readonly bool _enabled = !Console.IsErrorRedirected && total > 0;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _lastDraw = -1000;

        public void Report(long done)
        {
            if (!_enabled || _clock.ElapsedMilliseconds - _lastDraw < 100)
            {
                return;
            }

            _lastDraw = _clock.ElapsedMilliseconds;
            Console.Error.Write($"\r{label}: {100.0 * done / total,5:0.0}% of {Size(total)}");
        }

        public void Dispose()
        {
            if (_enabled)
            {
                Console.Error.Write("\r\u001b[K");
            }
        }
    }
}
