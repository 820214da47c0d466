using System.Buffers;
using System.Runtime.InteropServices;
using TurboOci.Frontends.Fuse;
using TurboOci.Frontends.Nbd;
using TurboOci.Interop.Fuse;
using TurboOci.Storage;

namespace TurboOci.Fuzz.Targets;

/// <summary>
/// What an NBD client sends, from the first byte: client flags, options until GO or EXPORT_NAME,
/// then requests. The parser must frame it or refuse it; the parsed values must be consistent.
/// </summary>
public sealed class NbdClientTarget : IFuzzTarget
{
    public string Name => "nbd-client";

    public void Run(ReadOnlySpan<byte> input)
    {
        var parser = new NbdParser(1 << 16);
        var buffer = new ReadOnlySequence<byte>(input.ToArray());
        if (!parser.TryParseClientFlags(buffer, out _, out var consumed, out _))
        {
            return;
        }

        buffer = buffer.Slice(consumed);
        var transmitting = false;
        for (var count = 0; count < 1000 && !transmitting; count++)
        {
            if (!parser.TryParseOption(buffer, out var option, out consumed, out _))
            {
                return;
            }

            if (option.Data.Length > NbdParser.MaxOptionLength)
            {
                throw new InvalidOperationException($"option data of {option.Data.Length} bytes passed the limit");
            }

            if (option.Type is NbdOptionType.Info or NbdOptionType.Go)
            {
                NbdParser.TryParseInfoRequest(option.Data.ToArray(), out _, out _);
            }
            else if (option.Type is NbdOptionType.ListMetaContext or NbdOptionType.SetMetaContext)
            {
                NbdParser.TryParseMetaContextRequest(option.Data.ToArray(), out _, out _);
            }

            transmitting = option.Type is NbdOptionType.Go or NbdOptionType.ExportName;
            buffer = buffer.Slice(consumed);
        }

        while (parser.TryParseRequest(buffer, out var request, out consumed, out _))
        {
            var expected = request.Command == NbdCommand.Write ? request.Length : 0;
            if (request.Payload.Length != expected)
            {
                throw new InvalidOperationException($"{request.Command} of {request.Length} bytes came with a {request.Payload.Length}-byte payload");
            }

            buffer = buffer.Slice(consumed);
        }

        if (parser.StreamOffset != input.Length - buffer.Length)
        {
            throw new InvalidOperationException($"stream offset {parser.StreamOffset} disagrees with {input.Length - buffer.Length} bytes consumed");
        }
    }
}

/// <summary>
/// Requests as the kernel would write them to /dev/fuse, one after another (each as long as its
/// header says), answered by the FUSE-file system over a 1 MiB writable device after a normal INIT.
/// Every reply must be well formed, and the device must never see a call it refuses.
/// </summary>
public sealed class FuseRequestTarget : IFuzzTarget
{
    private const int HeaderSize = 40;

    public string Name => "fuse-request";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var source = new MemoryBlockSource(new byte[1 << 20], writable: true);
        var fileSystem = new FuseFileSystem(source, "device", readOnly: false, maxWrite: 64 << 10);
        var reply = new byte[fileSystem.ReplyBufferSize];
        fileSystem.Handle(Init(), reply);
        for (var rest = input; rest.Length > 0;)
        {
            var length = rest.Length >= 4 ? (int)Math.Clamp(MemoryMarshal.Read<uint>(rest), 1u, (uint)rest.Length) : rest.Length;
            var request = rest[..length];
            rest = rest[length..];
            var written = fileSystem.Handle(request, reply);
            if (written == 0)
            {
                continue;
            }

            var header = MemoryMarshal.Read<FuseOutHeader>(reply);
            if (written < 16 || written > reply.Length || header.Length != written || header.Unique != MemoryMarshal.Read<FuseInHeader>(request).Unique)
            {
                throw new InvalidOperationException($"malformed reply: {written} bytes, header {header.Length}/{header.Error}/{header.Unique}");
            }

            if (header.Error > 0 || (header.Error < 0 && written != 16))
            {
                throw new InvalidOperationException($"error {header.Error} with a {written}-byte reply");
            }
        }

        if (fileSystem.LastSourceError is { } error)
        {
            throw new InvalidOperationException("the device was called outside its contract", error);
        }
    }

    private static byte[] Init()
    {
        var request = new byte[HeaderSize + Marshal.SizeOf<FuseInitIn>()];
        var header = new FuseInHeader { Length = (uint)request.Length, Opcode = FuseOpcode.Init, Unique = 1 };
        MemoryMarshal.Write(request, in header);
        var init = new FuseInitIn { Major = 7, Minor = 38, MaxReadahead = 1 << 17, Flags = 0xFFFFFFFF };
        MemoryMarshal.Write(request.AsSpan(HeaderSize), in init);
        return request;
    }
}
