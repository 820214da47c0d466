using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using TurboOci.Interop.Fuse;
using TurboOci.Interop.Linux;
using TurboOci.Storage;

namespace TurboOci.Frontends.Fuse;

/// <summary>
/// The FUSE file system of <see cref="FuseFileMount"/>, without I/O: one directory (node 1) that
/// holds one regular file (node 2), the device. <see cref="Handle"/> turns one request, exactly as
/// read from /dev/fuse, into its reply; it never throws, whatever the bytes.
/// </summary>
/// <remarks>
/// The file is opened with FOPEN_DIRECT_IO: every read and write reaches the block source, so the
/// page cache holds the filesystem's blocks once (above the loop device), not twice.
/// Requests carry up to 1 MiB (max_write and max_pages = 256 in INIT), so a loop device's 1 MiB
/// reads reach the source whole. For a source that is a local file, READ replies can leave the
/// payload in the file (<see cref="Handle(ReadOnlySpan{byte}, Span{byte}, out FilePayload)"/>) for the
/// caller to send from a mapping of it in one copy.
/// </remarks>
public sealed class FuseFileSystem
{
    public const ulong FileNodeId = 2;

    private const uint DirectoryMode = 0x4000 | 0x1ED; // S_IFDIR | 0755
    private const uint RegularFileMode = 0x8000;       // S_IFREG
    private const uint DirentTypeDirectory = 4;        // DT_DIR
    private const uint DirentTypeRegular = 8;          // DT_REG
    private const int OpenAccessModeMask = 3;          // O_ACCMODE
    private const ulong CacheSeconds = 3600;           // nothing but our own writes changes the tree

    private static readonly int s_inHeaderSize = Unsafe.SizeOf<FuseInHeader>();
    private static readonly int s_outHeaderSize = Unsafe.SizeOf<FuseOutHeader>();

    private readonly BlockSource _source;
    private readonly byte[] _fileName;
    private readonly bool _readOnly;
    private readonly uint _uid;
    private readonly uint _gid;
    private readonly ulong _createdSeconds;
    private readonly long[] _requestCounts = new long[64];
    private int _dirty;
    private int _initialized;
    private Exception? _lastSourceError;

    public FuseFileSystem(BlockSource source, string fileName, bool readOnly, int maxWrite, uint uid = 0, uint gid = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (string.IsNullOrEmpty(fileName) || fileName.Contains('/', StringComparison.Ordinal) || fileName is "." or "..")
        {
            throw new ArgumentException($"'{fileName}' is not a plain file name", nameof(fileName));
        }

        if (maxWrite < 4096 || maxWrite % 4096 != 0 || maxWrite > 16 << 20)
        {
            throw new ArgumentOutOfRangeException(nameof(maxWrite), maxWrite, "a multiple of 4096 between 4 KiB and 16 MiB");
        }

        _source = source;
        _fileName = Encoding.UTF8.GetBytes(fileName);
        _readOnly = readOnly || !source.CanWrite;
        _uid = uid;
        _gid = gid;
        MaxWrite = maxWrite;
        _createdSeconds = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        BackingFile = FindBackingFile(source);
        ResolvesFileRanges = FileRanges.CanResolve(source);
    }

    /// <summary>The device's bytes.</summary>
    public BlockSource Source => _source;

    /// <summary>
    /// Whether READ payloads can be named instead of read (<see cref="Handle(ReadOnlySpan{byte}, Span{byte}, out FilePayload)"/>):
    /// the source says which local files hold its bytes (<see cref="FileRanges"/>): a file, a slice of one, an
    /// LSMT layer or stack of uncompressed layers, an image over one.
    /// </summary>
    public bool ResolvesFileRanges { get; }

    /// <summary>
    /// The local file that holds the device's bytes, when the source is a plain file or a slice of one
    /// (device offset 0 is file offset Start); READ payloads can then be sent from the file itself.
    /// </summary>
    public (FileBlockSource? File, long Start) BackingFile { get; }

    /// <summary>The largest WRITE (and READ) payload negotiated with the kernel.</summary>
    public int MaxWrite { get; }

    /// <summary>A /dev/fuse read buffer that fits the largest request: headers plus one WRITE payload.</summary>
    public int RequestBufferSize => Math.Max(FuseConstants.MinimumReadBuffer, MaxWrite + 4096);

    /// <summary>A reply buffer that fits the largest reply: a header plus one READ payload.</summary>
    public int ReplyBufferSize => MaxWrite + 4096;

    public bool ReadOnly => _readOnly;

    /// <summary>Whether the kernel has sent INIT and got our answer.</summary>
    public bool Initialized => Volatile.Read(ref _initialized) != 0;

    /// <summary>The protocol minor version agreed in INIT.</summary>
    public uint NegotiatedMinor { get; private set; }

    /// <summary>The first error the block source raised, for diagnosis (the kernel saw EIO).</summary>
    public Exception? LastSourceError => Volatile.Read(ref _lastSourceError);

    /// <summary>How many requests with this opcode were handled.</summary>
    public long RequestCount(FuseOpcode opcode) => (uint)opcode < _requestCounts.Length ? Interlocked.Read(ref _requestCounts[(int)opcode]) : 0;

    /// <summary>
    /// Handles one request. Returns the length of the reply written to <paramref name="reply"/>
    /// (at least <see cref="ReplyBufferSize"/> bytes), or 0 when the request takes no reply
    /// (FORGET, BATCH_FORGET, INTERRUPT) or is too short to carry a header.
    /// </summary>
    public int Handle(ReadOnlySpan<byte> request, Span<byte> reply) => Handle(request, reply, payloadFromFile: false, out _);

    /// <summary>
    /// Like <see cref="Handle(ReadOnlySpan{byte}, Span{byte})"/>, except that a READ of a source whose bytes lie
    /// in local files (<see cref="ResolvesFileRanges"/>) is not read: the reply holds only its header, whose
    /// length counts the payload, and <paramref name="payload"/> says which device bytes follow it (and, for a
    /// <see cref="BackingFile"/>, where they are in it), for the caller to send from the files without copying
    /// them through a buffer (<see cref="FileRanges.TryResolve"/>). <paramref name="payload"/> is empty for every other request.
    /// </summary>
    public int Handle(ReadOnlySpan<byte> request, Span<byte> reply, out FilePayload payload) =>
        Handle(request, reply, payloadFromFile: true, out payload);

    /// <summary>
    /// Answers the READ of <paramref name="payload"/> from a buffer after all, when the caller cannot send
    /// it from the file (say the file grew past what it mapped): the same reply
    /// <see cref="Handle(ReadOnlySpan{byte}, Span{byte})"/> gives.
    /// </summary>
    public int ReplyFromBuffer(in FilePayload payload, Span<byte> reply)
    {
        try
        {
            return ReplyToRead(payload.Unique, payload.SourceOffset, payload.Length, reply);
        }
        catch (Exception e)
        {
            return SourceFailed(e, payload.Unique, reply);
        }
    }

    private int Handle(ReadOnlySpan<byte> request, Span<byte> reply, bool payloadFromFile, out FilePayload payload)
    {
        payload = default;
        if (request.Length < s_inHeaderSize)
        {
            return 0; // the kernel never sends this; there is no unique id to answer
        }

        var header = MemoryMarshal.Read<FuseInHeader>(request);
        if ((uint)header.Opcode < _requestCounts.Length)
        {
            Interlocked.Increment(ref _requestCounts[(int)header.Opcode]);
        }

        if (header.Length != request.Length)
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        var body = request[s_inHeaderSize..];
        try
        {
            return header.Opcode switch
            {
                FuseOpcode.Init => Init(header, body, reply),
                FuseOpcode.Forget or FuseOpcode.BatchForget or FuseOpcode.Interrupt => 0,
                _ when !Initialized => Error(reply, header.Unique, Errno.EPROTO),
                FuseOpcode.Lookup => Lookup(header, body, reply),
                FuseOpcode.GetAttr => GetAttr(header, reply),
                FuseOpcode.SetAttr => SetAttr(header, body, reply),
                FuseOpcode.Open => Open(header, body, reply),
                FuseOpcode.OpenDir => OpenDir(header, reply),
                FuseOpcode.Read => Read(header, body, reply, payloadFromFile, out payload),
                FuseOpcode.Write => Write(header, body, reply),
                FuseOpcode.Flush => Flush(header, onlyIfDirty: true, reply),
                FuseOpcode.Fsync => Flush(header, onlyIfDirty: false, reply),
                FuseOpcode.Fallocate => Fallocate(header, body, reply),
                FuseOpcode.ReadDir => ReadDir(header, body, reply, plus: false),
                FuseOpcode.ReadDirPlus => ReadDir(header, body, reply, plus: true),
                FuseOpcode.StatFs => StatFs(header, reply),
                FuseOpcode.Release or FuseOpcode.ReleaseDir or FuseOpcode.FsyncDir or FuseOpcode.Access or FuseOpcode.Destroy =>
                    Ok(reply, header.Unique),
                _ => Error(reply, header.Unique, Errno.ENOSYS),
            };
        }
        catch (Exception e)
        {
            return SourceFailed(e, header.Unique, reply);
        }
    }

    /// <summary>
    /// The block source failed (a broken layer, a network error, a bug): the kernel gets an error for this
    /// request only, and the server keeps serving the others.
    /// </summary>
    private int SourceFailed(Exception e, ulong unique, Span<byte> reply)
    {
        Interlocked.CompareExchange(ref _lastSourceError, e, null);
        return Error(reply, unique, e is NotSupportedException ? Errno.EOPNOTSUPP : Errno.EIO);
    }

    private int Init(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (body.Length < FuseInitIn.CompatSize)
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        // Older kernels send the 16-byte form; read what is there into a zeroed struct.
        var input = default(FuseInitIn);
        body[..Math.Min(body.Length, Unsafe.SizeOf<FuseInitIn>())].CopyTo(MemoryMarshal.AsBytes(new Span<FuseInitIn>(ref input)));
        if (input.Major != FuseConstants.KernelVersion || input.Minor < FuseConstants.MinimumMinorVersion)
        {
            return Error(reply, header.Unique, Errno.EPROTO);
        }

        const uint wanted = FuseConstants.InitAsyncRead | FuseConstants.InitBigWrites | FuseConstants.InitDoReadDirPlus |
                            FuseConstants.InitAsyncDio | FuseConstants.InitParallelDirOps | FuseConstants.InitMaxPages;
        NegotiatedMinor = Math.Min(input.Minor, FuseConstants.KernelMinorVersion);
        var output = new FuseInitOut
        {
            Major = FuseConstants.KernelVersion,
            Minor = NegotiatedMinor,
            MaxReadahead = input.MaxReadahead,
            Flags = input.Flags & wanted,
            MaxBackground = 64,
            CongestionThreshold = 48,
            MaxWrite = (uint)MaxWrite,
            TimeGranularity = 1,
            MaxPages = (ushort)(MaxWrite / 4096),
        };
        Volatile.Write(ref _initialized, 1);
        return Reply(reply, header.Unique, output);
    }

    private int Lookup(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        var name = body.IndexOf((byte)0) is var end and >= 0 ? body[..end] : body;
        if (header.NodeId != FuseConstants.RootId || !name.SequenceEqual(_fileName))
        {
            return Error(reply, header.Unique, Errno.ENOENT);
        }

        return Reply(reply, header.Unique, Entry(FileNodeId));
    }

    private int GetAttr(in FuseInHeader header, Span<byte> reply) =>
        TryAttributes(header.NodeId, out var attr)
            ? Reply(reply, header.Unique, new FuseAttrOut { AttrValid = CacheSeconds, Attr = attr })
            : Error(reply, header.Unique, Errno.ENOENT);

    /// <summary>
    /// The device has a fixed size and fixed ownership: truncation to another size, chmod and chown
    /// are refused; times (touch) and a truncation to the current size are accepted and ignored.
    /// </summary>
    private int SetAttr(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (!TryRead(body, out FuseSetAttrIn input))
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        if (!TryAttributes(header.NodeId, out var attr))
        {
            return Error(reply, header.Unique, Errno.ENOENT);
        }

        if ((input.Valid & FuseConstants.SetAttrSize) != 0 && (header.NodeId != FileNodeId || (long)input.Size != _source.Size))
        {
            return Error(reply, header.Unique, header.NodeId == FileNodeId ? Errno.EPERM : Errno.EISDIR);
        }

        if ((input.Valid & (FuseConstants.SetAttrMode | FuseConstants.SetAttrUid | FuseConstants.SetAttrGid)) != 0)
        {
            return Error(reply, header.Unique, Errno.EPERM);
        }

        return Reply(reply, header.Unique, new FuseAttrOut { AttrValid = CacheSeconds, Attr = attr });
    }

    private int Open(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (!TryRead(body, out FuseOpenIn input))
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        if (header.NodeId != FileNodeId)
        {
            return Error(reply, header.Unique, header.NodeId == FuseConstants.RootId ? Errno.EISDIR : Errno.ENOENT);
        }

        if (_readOnly && (input.Flags & OpenAccessModeMask) != 0)
        {
            return Error(reply, header.Unique, Errno.EROFS);
        }

        return Reply(reply, header.Unique, new FuseOpenOut { OpenFlags = FuseConstants.OpenDirectIo | FuseConstants.OpenParallelDirectWrites });
    }

    private int OpenDir(in FuseInHeader header, Span<byte> reply) =>
        header.NodeId == FuseConstants.RootId
            ? Reply(reply, header.Unique, default(FuseOpenOut))
            : Error(reply, header.Unique, header.NodeId == FileNodeId ? Errno.ENOTDIR : Errno.ENOENT);

    private int Read(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply, bool payloadFromFile, out FilePayload payload)
    {
        payload = default;
        if (!TryRead(body, out FuseReadIn input) || input.Offset > long.MaxValue)
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        if (header.NodeId != FileNodeId)
        {
            return Error(reply, header.Unique, Errno.EISDIR);
        }

        // At or past the end there is nothing to read: answer without asking the source.
        var offset = (long)input.Offset;
        var wanted = (int)Math.Min(Math.Min(input.Size, (uint)(reply.Length - s_outHeaderSize)), Math.Max(0, _source.Size - offset));
        if (payloadFromFile && wanted > 0 && ResolvesFileRanges)
        {
            var (file, start) = BackingFile;
            payload = new FilePayload(file is null ? -1 : checked(start + offset), wanted, header.Unique, offset);
            return Header(reply, header.Unique, s_outHeaderSize + wanted) - wanted;
        }

        return ReplyToRead(header.Unique, offset, wanted, reply);
    }

    private int ReplyToRead(ulong unique, long offset, int wanted, Span<byte> reply)
    {
        var read = wanted == 0 ? 0 : _source.ReadAt(offset, reply.Slice(s_outHeaderSize, wanted));
        return Header(reply, unique, s_outHeaderSize + read);
    }

    /// <summary>The local file under a source that is one (<see cref="FileBlockSource"/>) or a slice of one, and where the source starts in it.</summary>
    private static (FileBlockSource? File, long Start) FindBackingFile(BlockSource source)
    {
        var start = 0L;
        while (source is SliceBlockSource slice)
        {
            start = checked(start + slice.Start);
            source = slice.Inner;
        }

        return source is FileBlockSource file ? (file, start) : (null, 0);
    }

    private int Write(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        var inSize = Unsafe.SizeOf<FuseWriteIn>();
        var parsed = TryRead(body, out FuseWriteIn input);
        if (WriteRefusal(header, parsed && input.Offset <= long.MaxValue && input.Size == body.Length - inSize) is { } refusal)
        {
            return Error(reply, header.Unique, refusal);
        }

        // An empty write changes nothing, wherever it points (past the end too): nothing to ask the source.
        if (input.Size == 0)
        {
            return Reply(reply, header.Unique, default(FuseWriteOut));
        }

        // Like a block device: a write that starts at the end finds no space, one that crosses it is cut short.
        var offset = (long)input.Offset;
        var size = _source.Size;
        if (offset >= size)
        {
            return Error(reply, header.Unique, Errno.ENOSPC);
        }

        var length = (int)Math.Min(input.Size, size - offset);
        _source.WriteAt(offset, body.Slice(inSize, length));
        Volatile.Write(ref _dirty, 1);
        return Reply(reply, header.Unique, new FuseWriteOut { Size = (uint)length });
    }

    /// <summary>Why a request that changes the device is refused, in the order the checks matter: malformed, not the file, read-only.</summary>
    private Errno? WriteRefusal(in FuseInHeader header, bool wellFormed) =>
        !wellFormed ? Errno.EINVAL
        : header.NodeId != FileNodeId ? Errno.EISDIR
        : _readOnly ? Errno.EROFS
        : null;

    /// <summary>FSYNC (the loop driver's REQ_OP_FLUSH) always flushes; FLUSH (each close) only after writes.</summary>
    private int Flush(in FuseInHeader header, bool onlyIfDirty, Span<byte> reply)
    {
        if (!_readOnly && (!onlyIfDirty || Volatile.Read(ref _dirty) != 0))
        {
            // Clear first: a write that lands during the flush marks the device dirty again.
            Volatile.Write(ref _dirty, 0);
            _source.Flush();
        }

        return Ok(reply, header.Unique);
    }

    /// <summary>
    /// The loop driver turns discard into FALLOC_FL_PUNCH_HOLE and write-zeroes into
    /// FALLOC_FL_ZERO_RANGE, both with KEEP_SIZE: either becomes a trim, whose ranges read as zeros.
    /// </summary>
    private int Fallocate(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        var parsed = TryRead(body, out FuseFallocateIn input);
        if (WriteRefusal(header, parsed && input.Offset <= long.MaxValue && input.Length <= long.MaxValue) is { } refusal)
        {
            return Error(reply, header.Unique, refusal);
        }

        var offset = (long)input.Offset;
        var length = (long)input.Length;
        if (length > _source.Size - offset)
        {
            return Error(reply, header.Unique, (input.Mode & FuseConstants.FallocKeepSize) != 0 ? Errno.EINVAL : Errno.EFBIG);
        }

        switch (input.Mode)
        {
            case 0:
            case FuseConstants.FallocKeepSize:
                return Ok(reply, header.Unique); // preallocation: every byte of the device already exists
            case FuseConstants.FallocKeepSize | FuseConstants.FallocPunchHole:
            case FuseConstants.FallocKeepSize | FuseConstants.FallocZeroRange:
            case FuseConstants.FallocZeroRange:
                _source.Trim(offset, length);
                Volatile.Write(ref _dirty, 1);
                return Ok(reply, header.Unique);
            default:
                return Error(reply, header.Unique, Errno.EOPNOTSUPP);
        }
    }

    private int ReadDir(in FuseInHeader header, ReadOnlySpan<byte> body, Span<byte> reply, bool plus)
    {
        if (!TryRead(body, out FuseReadIn input))
        {
            return Error(reply, header.Unique, Errno.EINVAL);
        }

        if (header.NodeId != FuseConstants.RootId)
        {
            return Error(reply, header.Unique, Errno.ENOTDIR);
        }

        // The directory is always the same three entries; an entry's offset is the cookie of the next.
        ReadOnlySpan<byte> dot = "."u8;
        ReadOnlySpan<byte> dotDot = ".."u8;
        var space = reply[s_outHeaderSize..][..(int)Math.Min(input.Size, (uint)(reply.Length - s_outHeaderSize))];
        var used = 0;
        for (var index = input.Offset; index < 3; index++)
        {
            var nodeId = index < 2 ? FuseConstants.RootId : FileNodeId;
            var type = index < 2 ? DirentTypeDirectory : DirentTypeRegular;
            var name = index switch
            {
                0 => dot,
                1 => dotDot,
                _ => _fileName,
            };
            var size = plus ? FuseConstants.DirentPlusSize(name.Length) : FuseConstants.DirentSize(name.Length);
            if (used + size > space.Length)
            {
                break;
            }

            var entry = space.Slice(used, size);
            entry.Clear();
            var dirent = new FuseDirent { Ino = nodeId, Offset = index + 1, NameLength = (uint)name.Length, Type = type };
            var direntAt = 0;
            if (plus)
            {
                // "." and ".." carry no entry (node 0): the kernel skips them instead of counting a lookup.
                var entryOut = index < 2 ? default : Entry(nodeId);
                MemoryMarshal.Write(entry, in entryOut);
                direntAt = Unsafe.SizeOf<FuseEntryOut>();
            }

            MemoryMarshal.Write(entry[direntAt..], in dirent);
            name.CopyTo(entry[(direntAt + Unsafe.SizeOf<FuseDirent>())..]);
            used += size;
        }

        return Header(reply, header.Unique, s_outHeaderSize + used);
    }

    private int StatFs(in FuseInHeader header, Span<byte> reply)
    {
        const uint blockSize = 4096;
        var blocks = (ulong)_source.Size / blockSize;
        return Reply(reply, header.Unique, new FuseStatFsOut
        {
            St = new FuseKStatFs
            {
                Blocks = blocks,
                Files = 2,
                BlockSize = blockSize,
                FragmentSize = blockSize,
                NameLength = 255,
            },
        });
    }

    private FuseEntryOut Entry(ulong nodeId)
    {
        TryAttributes(nodeId, out var attr);
        return new FuseEntryOut { NodeId = nodeId, EntryValid = CacheSeconds, AttrValid = CacheSeconds, Attr = attr };
    }

    private bool TryAttributes(ulong nodeId, out FuseAttr attr)
    {
        attr = new FuseAttr
        {
            Ino = nodeId,
            Atime = _createdSeconds,
            Mtime = _createdSeconds,
            Ctime = _createdSeconds,
            Uid = _uid,
            Gid = _gid,
            BlockSize = 4096,
        };
        switch (nodeId)
        {
            case FuseConstants.RootId:
                attr.Mode = DirectoryMode;
                attr.NLink = 2;
                attr.Size = 4096;
                return true;
            case FileNodeId:
                var size = (ulong)_source.Size;
                attr.Mode = RegularFileMode | (_readOnly ? 0x124u : 0x1A4u); // 0444 or 0644
                attr.NLink = 1;
                attr.Size = size;
                attr.Blocks = (size + 511) / 512;
                return true;
            default:
                return false;
        }
    }

    private static bool TryRead<T>(ReadOnlySpan<byte> body, out T value)
        where T : unmanaged
    {
        if (body.Length < Unsafe.SizeOf<T>())
        {
            value = default;
            return false;
        }

        value = MemoryMarshal.Read<T>(body);
        return true;
    }

    private static int Reply<T>(Span<byte> reply, ulong unique, in T payload)
        where T : unmanaged
    {
        MemoryMarshal.Write(reply[s_outHeaderSize..], in payload);
        return Header(reply, unique, s_outHeaderSize + Unsafe.SizeOf<T>());
    }

    private static int Ok(Span<byte> reply, ulong unique) => Header(reply, unique, s_outHeaderSize);

    private static int Error(Span<byte> reply, ulong unique, Errno errno)
    {
        var header = new FuseOutHeader { Length = (uint)s_outHeaderSize, Error = -(int)errno, Unique = unique };
        MemoryMarshal.Write(reply, in header);
        return s_outHeaderSize;
    }

    private static int Header(Span<byte> reply, ulong unique, int length)
    {
        var header = new FuseOutHeader { Length = (uint)length, Unique = unique };
        MemoryMarshal.Write(reply, in header);
        return length;
    }
}

/// <summary>
/// The payload of a READ reply that stays in the files holding the device's bytes: <see cref="Length"/> device bytes
/// from <see cref="SourceOffset"/>, the answer to request <see cref="Unique"/>. <see cref="FileOffset"/> is where they
/// start in <see cref="FuseFileSystem.BackingFile"/> when the source is one file, and -1 for a source whose bytes
/// lie in several files (a layer stack), resolved with <see cref="FileRanges.TryResolve"/>.
/// </summary>
public readonly record struct FilePayload(long FileOffset, int Length, ulong Unique, long SourceOffset)
{
    public bool IsEmpty => Length == 0;
}
