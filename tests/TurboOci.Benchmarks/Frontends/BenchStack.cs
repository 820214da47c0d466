using System.Security.Cryptography;
using TurboOci.Formats.Lsmt;
using TurboOci.Storage;

namespace TurboOci.Benchmarks.Frontends;

/// <summary>
/// The frontends benchmark's hot stack: the raw image as an uncompressed committed LSMT layer, under a second
/// committed layer that overwrites 256 extents (4 KiB–1 MiB) with other bytes and trims 8. Beside it, built
/// independently by patching a copy of the raw image with the same writes and zeros, the raw export the
/// peers (losetup, qemu-nbd) serve; <see cref="Open"/> checks the stack reads exactly that file.
/// </summary>
internal sealed class BenchStack
{
    private const int MiB = 1 << 20;

    private BenchStack(string lower, string upper, string export)
    {
        LowerPath = lower;
        UpperPath = upper;
        ExportPath = export;
    }

    public string LowerPath { get; }

    public string UpperPath { get; }

    /// <summary>The raw file with the stack's contents, for the peers.</summary>
    public string ExportPath { get; }

    /// <summary>Builds the layer files and the export in <paramref name="work"/> unless a previous run left them.</summary>
    public static BenchStack Prepare(string rawImage, string work)
    {
        var size = new FileInfo(rawImage).Length;
        var stack = new BenchStack(Path.Combine(work, "stack-lower.commit"), Path.Combine(work, "stack-upper.commit"), Path.Combine(work, "stack-export.img"));
        var done = Path.Combine(work, $"stack-{size >> 20}m.done");
        if (File.Exists(done) && File.Exists(stack.LowerPath) && File.Exists(stack.UpperPath) && File.Exists(stack.ExportPath))
        {
            return stack;
        }

        File.Delete(done);
        var lowerData = Path.Combine(work, "stack-lower.data");
        var lowerIndex = Path.Combine(work, "stack-lower.index");
        var upperData = Path.Combine(work, "stack-upper.data");
        var upperIndex = Path.Combine(work, "stack-upper.index");
        foreach (var path in new[] { lowerData, lowerIndex, upperData, upperIndex })
        {
            File.Delete(path);
        }

        using (var raw = FileBlockSource.OpenRead(rawImage))
        using (var lower = WritableLayer.Create(lowerData, lowerIndex, size))
        {
            var block = new byte[MiB];
            for (var offset = 0L; offset < size; offset += MiB)
            {
                var read = raw.ReadAt(offset, block);
                lower.WriteAt(offset, block.AsSpan(0, read));
            }

            LayerBlobWriter.Write(stack.LowerPath, new BlobPackaging(), output => lower.Commit(output));
        }

        File.Copy(rawImage, stack.ExportPath, overwrite: true);
        using (var lowerLayer = LayerBlob.OpenFile(stack.LowerPath))
        using (var upper = WritableLayer.Create(upperData, upperIndex, size, lowerLayer.Uuid, lower: lowerLayer))
        using (var export = FileBlockSource.OpenReadWrite(stack.ExportPath))
        {
            var random = new Random(2);
            for (var i = 0; i < 256; i++)
            {
                var bytes = new byte[random.Next(1, 257) * 4096];
                random.NextBytes(bytes);
                var offset = random.NextInt64(0, (size - bytes.Length) / 4096) * 4096;
                upper.WriteAt(offset, bytes);
                export.WriteAt(offset, bytes);
            }

            for (var i = 0; i < 8; i++)
            {
                var length = random.Next(16, 257) * 4096L;
                var offset = random.NextInt64(0, (size - length) / 4096) * 4096;
                upper.Trim(offset, length);
                export.WriteAt(offset, new byte[length]);
            }

            export.Flush();
            LayerBlobWriter.Write(stack.UpperPath, new BlobPackaging(), output => upper.Commit(output));
        }

        foreach (var path in new[] { lowerData, lowerIndex, upperData, upperIndex })
        {
            File.Delete(path);
        }

        File.WriteAllText(done, "built\n");
        return stack;
    }

    /// <summary>Opens the stack and checks, before anything is timed, that it reads exactly the export's bytes.</summary>
    public LayerStack Open()
    {
        var stack = LayerBlob.OpenStack([LowerPath, UpperPath]);
        var expected = Sha256(File.OpenRead(ExportPath));
        var actual = Sha256(new SourceStream(stack));
        if (expected != actual)
        {
            stack.Dispose();
            throw new InvalidDataException($"the LSMT stack reads sha256 {actual}, its raw export {ExportPath} has {expected}");
        }

        Console.WriteLine($"stack: {Path.GetFileName(LowerPath)} + {Path.GetFileName(UpperPath)} ({stack.Index.Count} merged extents), sha256 {actual} = its raw export");
        return stack;
    }

    /// <summary>The sha256 of a file read through a mount (a FUSE file), to check a frontend serves the stack's bytes.</summary>
    public static string Sha256OfFile(string path) => Sha256(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None));

    private static string Sha256(Stream stream)
    {
        using (stream)
        {
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
    }

    /// <summary>A block source read front to back as a stream, in 1 MiB reads.</summary>
    private sealed class SourceStream(BlockSource source) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => source.Size;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = source.ReadAt(_position, buffer.AsSpan(offset, Math.Min(count, MiB)));
            _position += read;
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
