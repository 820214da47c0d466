using Microsoft.Win32.SafeHandles;

namespace TurboOci.Storage;

/// <summary>
/// A local file as a block source. One <see cref="SafeFileHandle"/> is shared by every reader:
/// <see cref="RandomAccess"/> issues pread/pwrite, which carry their own offset, so concurrent
/// reads need no lock and no per-thread handle.
/// </summary>
public sealed class FileBlockSource : BlockSource
{
    private readonly SafeFileHandle _handle;
    private readonly bool _writable;
    private long _size;

    private FileBlockSource(SafeFileHandle handle, bool writable, long size, string path)
    {
        _handle = handle;
        _writable = writable;
        _size = size;
        Path = path;
    }

    public string Path { get; }

    public SafeFileHandle Handle => _handle;

    public override long Size => Interlocked.Read(ref _size);

    public override bool CanWrite => _writable;

    /// <summary>Opens an existing file read-only.</summary>
    public static FileBlockSource OpenRead(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        return new FileBlockSource(handle, writable: false, RandomAccess.GetLength(handle), path);
    }

    /// <summary>Opens (or creates, with <paramref name="size"/>) a file for reading and writing.</summary>
    public static FileBlockSource OpenReadWrite(string path, long? size = null)
    {
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        if (size is { } wanted && RandomAccess.GetLength(handle) != wanted)
        {
            RandomAccess.SetLength(handle, wanted);
        }

        return new FileBlockSource(handle, writable: true, RandomAccess.GetLength(handle), path);
    }

    public override int ReadAt(long offset, Span<byte> destination)
    {
        var wanted = ClampLength(offset, destination.Length);
        var total = 0;
        while (total < wanted)
        {
            var read = RandomAccess.Read(_handle, destination[total..wanted], offset + total);
            if (read == 0)
            {
                break; // the file shrank under us; report what we have
            }

            total += read;
        }

        return total;
    }

    public override async ValueTask<int> ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var wanted = ClampLength(offset, destination.Length);
        var total = 0;
        while (total < wanted)
        {
            var read = await RandomAccess.ReadAsync(_handle, destination[total..wanted], offset + total, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    public override void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        EnsureWritable();
        CheckWriteRange(offset, source.Length);
        RandomAccess.Write(_handle, source, offset);
    }

    public override async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        CheckWriteRange(offset, source.Length);
        await RandomAccess.WriteAsync(_handle, source, offset, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Grows or shrinks the file.</summary>
    public void SetSize(long size)
    {
        EnsureWritable();
        RandomAccess.SetLength(_handle, size);
        Interlocked.Exchange(ref _size, size);
    }

    public override void Flush()
    {
        if (_writable)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    /// <summary>Trim writes zeros: a plain file has no portable hole punch outside the interop layer.</summary>
    public override void Trim(long offset, long length)
    {
        EnsureWritable();
        CheckWriteRange(offset, length);
        Span<byte> zeros = stackalloc byte[4096];
        zeros.Clear();
        for (var done = 0L; done < length;)
        {
            var chunk = (int)Math.Min(zeros.Length, length - done);
            RandomAccess.Write(_handle, zeros[..chunk], offset + done);
            done += chunk;
        }
    }

    private void EnsureWritable()
    {
        if (!_writable)
        {
            throw new NotSupportedException($"{Path} was opened read-only.");
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _handle.Dispose();
        }
    }
}
