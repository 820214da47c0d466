using System.Runtime.InteropServices;
using System.Text;
using TurboOci.Frontends.Fuse;
using TurboOci.Interop.Fuse;
using TurboOci.Storage;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Fuse;

/// <summary>The FUSE request handler on its own, fed requests laid out as the kernel writes them.</summary>
public sealed class FuseFileSystemTests
{
    private const int Size = 1 << 20;
    private static readonly int s_inHeader = Marshal.SizeOf<FuseInHeader>();
    private static readonly int s_outHeader = Marshal.SizeOf<FuseOutHeader>();

    [Fact]
    public void InitNegotiatesTheMinorVersionAndOffersOnlyFlagsTheKernelHas()
    {
        var (fs, _) = Create(initialize: false);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EPROTO, Send(fs, FuseOpcode.GetAttr, 1, default(FuseGetAttrIn)).Error);

        var reply = Send(fs, FuseOpcode.Init, 0, new FuseInitIn { Major = 7, Minor = 45, MaxReadahead = 131072, Flags = FuseConstants.InitAsyncRead | FuseConstants.InitMaxPages | (1u << 31) });
        Assert.Equal(0, reply.Error);
        var init = MemoryMarshal.Read<FuseInitOut>(reply.Body);
        Assert.Equal(7u, init.Major);
        Assert.Equal(FuseConstants.KernelMinorVersion, init.Minor);
        Assert.Equal(FuseConstants.InitAsyncRead | FuseConstants.InitMaxPages, init.Flags);
        Assert.Equal((uint)fs.MaxWrite, init.MaxWrite);
        Assert.Equal(fs.MaxWrite / 4096, init.MaxPages);
        Assert.Equal(131072u, init.MaxReadahead);

        var (old, _) = Create(initialize: false);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EPROTO, Send(old, FuseOpcode.Init, 0, new FuseInitIn { Major = 7, Minor = 27 }).Error);
    }

    [Fact]
    public void ReadsAreClippedAtTheEndAndWritesPastItFindNoSpace()
    {
        var (fs, bytes) = Create();
        var read = Send(fs, FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = Size - 100, Size = 4096 });
        Assert.Equal(0, read.Error);
        Assert.Equal(bytes[^100..], read.Body);
        Assert.Empty(Send(fs, FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = Size + 4096, Size = 4096 }).Body);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EINVAL, Send(fs, FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = ulong.MaxValue - 10, Size = 4096 }).Error);

        var crossing = Send(fs, FuseOpcode.Write, FuseFileSystem.FileNodeId, new FuseWriteIn { Offset = Size - 10, Size = 20 }, new byte[20]);
        Assert.Equal(10u, MemoryMarshal.Read<FuseWriteOut>(crossing.Body).Size);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.ENOSPC, Send(fs, FuseOpcode.Write, FuseFileSystem.FileNodeId, new FuseWriteIn { Offset = Size, Size = 1 }, new byte[1]).Error);

        // An empty write is answered "0 bytes" wherever it points, without asking the device (found by fuzzing).
        var empty = Send(fs, FuseOpcode.Write, FuseFileSystem.FileNodeId, new FuseWriteIn { Offset = 16 * Size, Size = 0 });
        Assert.Equal(0, empty.Error);
        Assert.Equal(0u, MemoryMarshal.Read<FuseWriteOut>(empty.Body).Size);
        Assert.Null(fs.LastSourceError);

        // A WRITE whose size disagrees with the bytes that came is malformed.
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EINVAL, Send(fs, FuseOpcode.Write, FuseFileSystem.FileNodeId, new FuseWriteIn { Offset = 0, Size = 100 }, new byte[20]).Error);
    }

    [Fact]
    public void TheDirectoryListsDotDotDotAndTheFileAcrossPages()
    {
        var (fs, _) = Create();
        var names = new List<string>();
        ulong offset = 0;
        while (true)
        {
            // A page that fits one entry at a time forces the offset cookies to do the work.
            var reply = Send(fs, FuseOpcode.ReadDirPlus, FuseConstants.RootId, new FuseReadIn { Offset = offset, Size = (uint)FuseConstants.DirentPlusSize(6) });
            Assert.Equal(0, reply.Error);
            if (reply.Body.Length == 0)
            {
                break;
            }

            var plus = MemoryMarshal.Read<FuseDirentPlus>(reply.Body);
            names.Add(Encoding.UTF8.GetString(reply.Body.AsSpan(Marshal.SizeOf<FuseDirentPlus>(), (int)plus.Dirent.NameLength)));
            Assert.Equal(names[^1] == "device" ? FuseFileSystem.FileNodeId : 0UL, plus.EntryOut.NodeId);
            offset = plus.Dirent.Offset;
        }

        Assert.Equal([".", "..", "device"], names);
        var lookup = Send(fs, FuseOpcode.Lookup, FuseConstants.RootId, Encoding.UTF8.GetBytes("device\0"));
        var entry = MemoryMarshal.Read<FuseEntryOut>(lookup.Body);
        Assert.Equal((ulong)Size, entry.Attr.Size);
        Assert.Equal(0x81A4u, entry.Attr.Mode); // S_IFREG | 0644
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.ENOENT, Send(fs, FuseOpcode.Lookup, FuseConstants.RootId, Encoding.UTF8.GetBytes("other\0")).Error);
    }

    [Fact]
    public void TheSizeIsFixedAndAReadOnlySourceRefusesWriters()
    {
        var (fs, _) = Create();
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EPERM, Send(fs, FuseOpcode.SetAttr, FuseFileSystem.FileNodeId, new FuseSetAttrIn { Valid = FuseConstants.SetAttrSize, Size = 0 }).Error);
        Assert.Equal(0, Send(fs, FuseOpcode.SetAttr, FuseFileSystem.FileNodeId, new FuseSetAttrIn { Valid = FuseConstants.SetAttrSize, Size = Size }).Error);
        Assert.Equal(0, Send(fs, FuseOpcode.SetAttr, FuseFileSystem.FileNodeId, new FuseSetAttrIn { Valid = FuseConstants.SetAttrMtime }).Error);

        var readOnly = new FuseFileSystem(new MemoryBlockSource(new byte[Size]), "device", readOnly: false, maxWrite: 1 << 20);
        Send(readOnly, FuseOpcode.Init, 0, new FuseInitIn { Major = 7, Minor = 38 });
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EROFS, Send(readOnly, FuseOpcode.Open, FuseFileSystem.FileNodeId, new FuseOpenIn { Flags = 2 }).Error);
        var open = Send(readOnly, FuseOpcode.Open, FuseFileSystem.FileNodeId, new FuseOpenIn { Flags = 0 });
        Assert.Equal(FuseConstants.OpenDirectIo, MemoryMarshal.Read<FuseOpenOut>(open.Body).OpenFlags & FuseConstants.OpenDirectIo);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EROFS, Send(readOnly, FuseOpcode.Fallocate, FuseFileSystem.FileNodeId, new FuseFallocateIn { Offset = 0, Length = 4096, Mode = 3 }).Error);
    }

    [Fact]
    public void PunchHoleTrimsAndFsyncFlushes()
    {
        var (fs, bytes) = Create();
        Assert.Equal(0, Send(fs, FuseOpcode.Fallocate, FuseFileSystem.FileNodeId, new FuseFallocateIn { Offset = 4096, Length = 8192, Mode = FuseConstants.FallocKeepSize | FuseConstants.FallocPunchHole }).Error);
        Assert.True(bytes.AsSpan(4096, 8192).IndexOfAnyExcept((byte)0) < 0);
        Assert.NotEqual(0, bytes[4095]);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EINVAL, Send(fs, FuseOpcode.Fallocate, FuseFileSystem.FileNodeId, new FuseFallocateIn { Offset = Size - 10, Length = 20, Mode = 3 }).Error);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.EOPNOTSUPP, Send(fs, FuseOpcode.Fallocate, FuseFileSystem.FileNodeId, new FuseFallocateIn { Offset = 0, Length = 20, Mode = 0x20 }).Error);
        Assert.Equal(0, Send(fs, FuseOpcode.Fsync, FuseFileSystem.FileNodeId, default(FuseFsyncIn)).Error);
        Assert.Equal(-(int)TurboOci.Interop.Linux.Errno.ENOSYS, Send(fs, (FuseOpcode)200, FuseConstants.RootId, Array.Empty<byte>()).Error);
        Assert.Null(fs.LastSourceError);
    }

    [Fact]
    public void AReadOfAFileSliceNamesTheFileBytesInsteadOfReadingThem()
    {
        using var temp = new TempDir();
        var bytes = new byte[3 * Size];
        new Random(10).NextBytes(bytes);
        File.WriteAllBytes(temp.File("raw.img"), bytes);
        const long start = Size + 4097;
        using var file = FileBlockSource.OpenRead(temp.File("raw.img"));
        using var slice = new SliceBlockSource(file, start, Size);
        var fs = new FuseFileSystem(slice, "device", readOnly: true, maxWrite: 1 << 20);
        Assert.Same(file, fs.BackingFile.File);
        Assert.Equal(start, fs.BackingFile.Start);
        Send(fs, FuseOpcode.Init, 0, new FuseInitIn { Major = 7, Minor = 38 });

        // Across the end: a header that counts the 100 bytes left, and those bytes named in the file.
        var request = Request(FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = Size - 100, Size = 1 << 20 });
        var reply = new byte[fs.ReplyBufferSize];
        Assert.Equal(s_outHeader, fs.Handle(request, reply, out var payload));
        Assert.Equal((uint)(s_outHeader + 100), MemoryMarshal.Read<FuseOutHeader>(reply).Length);
        Assert.Equal(new FilePayload(start + Size - 100, 100, 77, Size - 100), payload);

        // The buffer fallback answers exactly as the plain handler does: the slice's bytes.
        var fallback = fs.ReplyFromBuffer(payload, reply);
        Assert.Equal(s_outHeader + 100, fallback);
        Assert.Equal(bytes.AsSpan((int)(start + Size - 100), 100), reply.AsSpan(s_outHeader, 100));

        // Nothing left to read, other requests and sources in memory carry no payload.
        Assert.Equal(s_outHeader, fs.Handle(Request(FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = Size, Size = 4096 }), reply, out payload));
        Assert.True(payload.IsEmpty);
        Assert.True(fs.Handle(Request(FuseOpcode.GetAttr, FuseFileSystem.FileNodeId, default(FuseGetAttrIn)), reply, out payload) > s_outHeader);
        Assert.True(payload.IsEmpty);
        var (memory, _) = Create();
        Assert.Null(memory.BackingFile.File);
        Assert.Equal(s_outHeader + 4096, memory.Handle(Request(FuseOpcode.Read, FuseFileSystem.FileNodeId, new FuseReadIn { Offset = 0, Size = 4096 }), reply, out payload));
        Assert.True(payload.IsEmpty);
    }

    private static byte[] Request<T>(FuseOpcode opcode, ulong nodeId, T body)
        where T : unmanaged
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        MemoryMarshal.Write(bytes, in body);
        return Request(opcode, nodeId, bytes);
    }

    /// <summary>A request as the kernel lays it out: the in-header, then the body; unique id 77.</summary>
    private static byte[] Request(FuseOpcode opcode, ulong nodeId, byte[] body)
    {
        var request = new byte[s_inHeader + body.Length];
        var header = new FuseInHeader { Length = (uint)request.Length, Opcode = opcode, Unique = 77, NodeId = nodeId };
        MemoryMarshal.Write(request, in header);
        body.CopyTo(request, s_inHeader);
        return request;
    }

    private static (FuseFileSystem FileSystem, byte[] Bytes) Create(bool initialize = true)
    {
        var bytes = new byte[Size];
        new Random(9).NextBytes(bytes);
        var fs = new FuseFileSystem(new MemoryBlockSource(bytes, writable: true), "device", readOnly: false, maxWrite: 1 << 20);
        if (initialize)
        {
            Assert.Equal(0, Send(fs, FuseOpcode.Init, 0, new FuseInitIn { Major = 7, Minor = 38 }).Error);
        }

        return (fs, bytes);
    }

    private static (int Error, byte[] Body) Send<T>(FuseFileSystem fs, FuseOpcode opcode, ulong nodeId, T body, byte[]? tail = null)
        where T : unmanaged
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        MemoryMarshal.Write(bytes, in body);
        return Send(fs, opcode, nodeId, tail is null ? bytes : [.. bytes, .. tail]);
    }

    private static (int Error, byte[] Body) Send(FuseFileSystem fs, FuseOpcode opcode, ulong nodeId, byte[] body)
    {
        var reply = new byte[fs.ReplyBufferSize];
        var length = fs.Handle(Request(opcode, nodeId, body), reply);
        var outHeader = MemoryMarshal.Read<FuseOutHeader>(reply);
        Assert.Equal((uint)length, outHeader.Length);
        Assert.Equal(77UL, outHeader.Unique);
        return (outHeader.Error, reply[s_outHeader..length]);
    }
}
