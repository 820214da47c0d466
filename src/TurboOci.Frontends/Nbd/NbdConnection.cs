using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using TurboOci.Storage;

namespace TurboOci.Frontends.Nbd;

/// <summary>
/// One client: the negotiation, then the transmission phase, where requests are parsed in order
/// and served concurrently (up to MaxInFlight), each reply sent whole under a send lock.
/// </summary>
internal sealed class NbdConnection
{
    private const int BlockSizeMinimum = 1;
    private const int BlockSizePreferred = 4096;
    private const uint BaseAllocationContextId = 1;

    /// <summary>At most this many extents answer one BLOCK_STATUS; the client asks again for the rest.</summary>
    private const int MaxBlockStatusExtents = 1024;

    /// <summary>Extent lengths are 32-bit on the wire: longer runs are cut into pieces of this size.</summary>
    private const long MaxBlockStatusExtentLength = uint.MaxValue & ~4095u;

    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly NbdParser _parser;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly SemaphoreSlim _inFlight;
    private readonly CancellationTokenSource _abort = new();
    private NbdExport? _export;
    private bool _noZeroes;
    private bool _structuredReplies;
    private bool _baseAllocation;

    public NbdConnection(NbdServer server, Socket socket)
    {
        _server = server;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 256 << 10, minimumReadSize: 64 << 10));
        _parser = new NbdParser(server.Options.MaxTransfer);
        _inFlight = new SemaphoreSlim(server.Options.MaxInFlight, server.Options.MaxInFlight);
    }

    private NbdServerOptions Options => _server.Options;

    /// <summary>Ends the connection now (server shutdown): pending reads of the socket fail.</summary>
    public void Abort()
    {
        try
        {
            _abort.Cancel();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
        }
    }

    public async Task RunAsync(CancellationToken serverStopping)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(serverStopping, _abort.Token);
        var cancellation = linked.Token;
        try
        {
            if (await NegotiateAsync(cancellation).ConfigureAwait(false))
            {
                await TransmitAsync(cancellation).ConfigureAwait(false);
            }
        }
        catch (TurboOciFormatException e)
        {
            _server.ReportProtocolError($"nbd client {_socket.RemoteEndPoint}: {e.Message}; disconnected");
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the server is stopping.
        }
        catch (Exception e)
        {
            _server.ReportError($"nbd connection failed: {e}");
        }
        finally
        {
            // Wait for requests still being served before the socket goes away under them.
            for (var i = 0; i < Options.MaxInFlight; i++)
            {
                await _inFlight.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            await _reader.CompleteAsync().ConfigureAwait(false);
            await _stream.DisposeAsync().ConfigureAwait(false);
            _abort.Dispose();
        }
    }

    /// <summary>The handshake and option haggling; true when an export was chosen for transmission.</summary>
    private async Task<bool> NegotiateAsync(CancellationToken cancellation)
    {
        var greeting = new byte[18];
        NbdWire.WriteGreeting(greeting, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        await SendAsync(greeting, cancellation).ConfigureAwait(false);

        NbdClientFlags clientFlags = default;
        if (!await ReadMessageAsync((in ReadOnlySequence<byte> b, out SequencePosition c, out SequencePosition e) =>
                _parser.TryParseClientFlags(b, out clientFlags, out c, out e), cancellation).ConfigureAwait(false))
        {
            return false;
        }

        _noZeroes = clientFlags.HasFlag(NbdClientFlags.NoZeroes);
        for (var count = 0; count < Options.MaxOptions; count++)
        {
            NbdOptionType type = default;
            byte[] data = [];
            if (!await ReadMessageAsync((in ReadOnlySequence<byte> b, out SequencePosition c, out SequencePosition e) =>
                {
                    if (!_parser.TryParseOption(b, out var option, out c, out e))
                    {
                        return false;
                    }

                    type = option.Type;
                    data = option.Data.ToArray(); // bounded by NbdParser.MaxOptionLength
                    return true;
                }, cancellation).ConfigureAwait(false))
            {
                return false;
            }

            switch (await HandleOptionAsync(type, data, cancellation).ConfigureAwait(false))
            {
                case OptionOutcome.Continue:
                    continue;
                case OptionOutcome.Transmit:
                    return true;
                default:
                    return false;
            }
        }

        _server.ReportProtocolError($"nbd client {_socket.RemoteEndPoint}: more than {Options.MaxOptions} options; disconnected");
        return false;
    }

    private enum OptionOutcome
    {
        Continue,
        Transmit,
        Close,
    }

    private async Task<OptionOutcome> HandleOptionAsync(NbdOptionType type, byte[] data, CancellationToken cancellation)
    {
        switch (type)
        {
            case NbdOptionType.ExportName:
            {
                // No way to answer "unknown" here: the protocol says close the connection.
                if (!NbdParser.TryDecodeName(data, out var name) || !_server.TryFindExport(name, out var export))
                {
                    return OptionOutcome.Close;
                }

                _export = export;
                await SendAsync(NbdWire.ExportNameReply((ulong)export.Source.Size, TransmissionFlags(export), _noZeroes), cancellation).ConfigureAwait(false);
                return OptionOutcome.Transmit;
            }

            case NbdOptionType.Abort:
                await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Ack), cancellation).ConfigureAwait(false);
                return OptionOutcome.Close;

            case NbdOptionType.List:
                if (data.Length != 0)
                {
                    await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorInvalid, "NBD_OPT_LIST takes no data"), cancellation).ConfigureAwait(false);
                    return OptionOutcome.Continue;
                }

                foreach (var export in _server.Exports.OrderBy(e => e.Name, StringComparer.Ordinal))
                {
                    await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Server, NbdWire.ServerEntry(export.Name, export.Description)), cancellation).ConfigureAwait(false);
                }

                await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Ack), cancellation).ConfigureAwait(false);
                return OptionOutcome.Continue;

            case NbdOptionType.Info:
            case NbdOptionType.Go:
                return await HandleInfoAsync(type, data, cancellation).ConfigureAwait(false);

            case NbdOptionType.StructuredReply:
                if (data.Length != 0)
                {
                    await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data"), cancellation).ConfigureAwait(false);
                    return OptionOutcome.Continue;
                }

                _structuredReplies = true;
                await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Ack), cancellation).ConfigureAwait(false);
                return OptionOutcome.Continue;

            case NbdOptionType.ListMetaContext:
            case NbdOptionType.SetMetaContext:
                await HandleMetaContextAsync(type, data, cancellation).ConfigureAwait(false);
                return OptionOutcome.Continue;

            case NbdOptionType.StartTls:
                await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorPolicy, "TLS is not offered: use a Unix socket or loopback"), cancellation).ConfigureAwait(false);
                return OptionOutcome.Continue;

            default:
                await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.ErrorUnsupported), cancellation).ConfigureAwait(false);
                return OptionOutcome.Continue;
        }
    }

    /// <summary>
    /// Offers one context, base:allocation (from the source's extents). LIST with no query, or a
    /// "base:" query, lists it; SET selects it when asked for by name, and replaces any earlier choice.
    /// </summary>
    private async Task HandleMetaContextAsync(NbdOptionType type, byte[] data, CancellationToken cancellation)
    {
        if (!_structuredReplies)
        {
            await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorInvalid, "negotiate structured replies first"), cancellation).ConfigureAwait(false);
            return;
        }

        if (!NbdParser.TryParseMetaContextRequest(data, out var name, out var queries))
        {
            await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorInvalid, "malformed meta context request"), cancellation).ConfigureAwait(false);
            return;
        }

        if (!_server.TryFindExport(name, out _))
        {
            await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorUnknown, "no such export"), cancellation).ConfigureAwait(false);
            return;
        }

        var selected = type == NbdOptionType.ListMetaContext
            ? queries.Length == 0 || queries.Any(q => q is NbdMagic.BaseAllocation or "base:")
            : queries.Contains(NbdMagic.BaseAllocation, StringComparer.Ordinal);
        if (type == NbdOptionType.SetMetaContext)
        {
            _baseAllocation = selected;
        }

        if (selected)
        {
            await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.MetaContext, NbdWire.MetaContext(BaseAllocationContextId, NbdMagic.BaseAllocation)), cancellation).ConfigureAwait(false);
        }

        await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Ack), cancellation).ConfigureAwait(false);
    }

    private async Task<OptionOutcome> HandleInfoAsync(NbdOptionType type, byte[] data, CancellationToken cancellation)
    {
        if (!NbdParser.TryParseInfoRequest(data, out var name, out var requested))
        {
            await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorInvalid, "malformed NBD_OPT_INFO/GO data"), cancellation).ConfigureAwait(false);
            return OptionOutcome.Continue;
        }

        if (!_server.TryFindExport(name, out var export))
        {
            await SendAsync(NbdWire.OptionError(type, NbdOptionReplyType.ErrorUnknown, "no such export"), cancellation).ConfigureAwait(false);
            return OptionOutcome.Continue;
        }

        await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Info, NbdWire.InfoExport((ulong)export.Source.Size, TransmissionFlags(export))), cancellation).ConfigureAwait(false);
        foreach (var info in requested.Distinct())
        {
            byte[]? item = info switch
            {
                NbdInfoType.Name => NbdWire.InfoText(NbdInfoType.Name, export.Name),
                NbdInfoType.Description when export.Description is not null => NbdWire.InfoText(NbdInfoType.Description, export.Description),
                NbdInfoType.BlockSize => NbdWire.InfoBlockSize(BlockSizeMinimum, BlockSizePreferred, (uint)Options.MaxTransfer),
                _ => null,
            };
            if (item is not null)
            {
                await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Info, item), cancellation).ConfigureAwait(false);
            }
        }

        await SendAsync(NbdWire.OptionReply(type, NbdOptionReplyType.Ack), cancellation).ConfigureAwait(false);
        if (type != NbdOptionType.Go)
        {
            return OptionOutcome.Continue;
        }

        _export = export;
        return OptionOutcome.Transmit;
    }

    private static NbdTransmissionFlags TransmissionFlags(NbdExport export)
    {
        // One block source behind every connection, flushed as a whole: a flush on any connection
        // covers writes completed on all of them, which is what CAN_MULTI_CONN promises.
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua |
                    NbdTransmissionFlags.SendDf | NbdTransmissionFlags.CanMultiConnection;
        return export.IsReadOnly
            ? flags | NbdTransmissionFlags.ReadOnly
            : flags | NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes;
    }

    private async Task TransmitAsync(CancellationToken cancellation)
    {
        var export = _export!;
        while (true)
        {
            NbdRequest request = default;
            byte[]? payload = null;
            var disconnect = false;
            if (!await ReadMessageAsync((in ReadOnlySequence<byte> b, out SequencePosition c, out SequencePosition e) =>
                {
                    if (!_parser.TryParseRequest(b, out request, out c, out e))
                    {
                        return false;
                    }

                    if (request.Command == NbdCommand.Write)
                    {
                        payload = ArrayPool<byte>.Shared.Rent((int)request.Length);
                        request.Payload.CopyTo(payload);
                    }

                    request = request with { Payload = default }; // pipe memory, gone after AdvanceTo

                    disconnect = request.Command == NbdCommand.Disconnect;
                    return true;
                }, cancellation).ConfigureAwait(false))
            {
                return;
            }

            if (disconnect)
            {
                return; // RunAsync waits for requests in flight, then closes
            }

            try
            {
                await _inFlight.WaitAsync(cancellation).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (payload is not null)
            {
                ArrayPool<byte>.Shared.Return(payload);
                throw;
            }

            var served = request;
            var data = payload;
            _ = Task.Run(async () =>
            {
                try
                {
                    await ServeAsync(export, served, data, cancellation).ConfigureAwait(false);
                }
                finally
                {
                    if (data is not null)
                    {
                        ArrayPool<byte>.Shared.Return(data);
                    }

                    _inFlight.Release();
                }
            }, CancellationToken.None);
        }
    }

    private async Task ServeAsync(NbdExport export, NbdRequest request, byte[]? payload, CancellationToken cancellation)
    {
        try
        {
            var error = Validate(export, request);
            if (error != NbdError.None)
            {
                await ReplyAsync(request, error, cancellation).ConfigureAwait(false);
                return;
            }

            var source = export.Source;
            var offset = (long)request.Offset;
            var length = (int)Math.Min(request.Length, int.MaxValue);
            switch (request.Command)
            {
                case NbdCommand.Read:
                    await ReadAsync(source, request, cancellation).ConfigureAwait(false);
                    return;
                case NbdCommand.BlockStatus:
                    await BlockStatusAsync(source, request, cancellation).ConfigureAwait(false);
                    return;
                case NbdCommand.Write:
                    await source.WriteAtAsync(offset, payload.AsMemory(0, length), cancellation).ConfigureAwait(false);
                    break;
                case NbdCommand.Flush:
                    await source.FlushAsync(cancellation).ConfigureAwait(false);
                    break;
                case NbdCommand.Trim:
                    BlockRequests.TrimOrIgnore(source, offset, request.Length);
                    break;
                case NbdCommand.WriteZeroes:
                    BlockRequests.WriteZeroes(source, offset, request.Length, mayTrim: !request.Flags.HasFlag(NbdCommandFlags.NoHole));
                    break;
            }

            if (request.Flags.HasFlag(NbdCommandFlags.Fua))
            {
                await source.FlushAsync(cancellation).ConfigureAwait(false);
            }

            await ReplyAsync(request, NbdError.None, cancellation).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _server.ReportError($"nbd {request.Command} at {request.Offset}+{request.Length} failed: {e.Message}");
            try
            {
                await ReplyAsync(request, e is NotSupportedException ? NbdError.NotSupported : NbdError.Io, cancellation).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The connection is gone too; nobody is left to tell.
            }
        }
    }

    /// <summary>Checks a request against the export before anything touches the source.</summary>
    private NbdError Validate(NbdExport export, NbdRequest request)
    {
        const NbdCommandFlags known = NbdCommandFlags.Fua | NbdCommandFlags.NoHole | NbdCommandFlags.DontFragment | NbdCommandFlags.RequestOne;
        if ((request.Flags & ~known) != 0)
        {
            return NbdError.Invalid;
        }

        var size = (ulong)export.Source.Size;
        var inside = request.Offset <= size && request.Length <= size - request.Offset;
        switch (request.Command)
        {
            case NbdCommand.Read:
                return !inside ? NbdError.Invalid : request.Length > (uint)Options.MaxTransfer ? NbdError.Overflow : NbdError.None;
            case NbdCommand.Write:
            case NbdCommand.Trim:
            case NbdCommand.WriteZeroes:
                return export.IsReadOnly ? NbdError.Permission : !inside ? NbdError.NoSpace : NbdError.None;
            case NbdCommand.Flush:
                return NbdError.None;
            case NbdCommand.BlockStatus:
                return _baseAllocation && inside && request.Length > 0 ? NbdError.None : NbdError.Invalid;
            default:
                return NbdError.Invalid; // CACHE is not offered; unknown commands
        }
    }

    private async Task ReadAsync(BlockSource source, NbdRequest request, CancellationToken cancellation)
    {
        var length = (int)request.Length;
        var headerSize = _structuredReplies ? NbdMagic.StructuredReplyHeaderSize + 8 : NbdMagic.SimpleReplySize;
        var buffer = ArrayPool<byte>.Shared.Rent(headerSize + length);
        try
        {
            var read = await source.ReadAtAsync((long)request.Offset, buffer.AsMemory(headerSize, length), cancellation).ConfigureAwait(false);
            if (read != length)
            {
                throw new IOException($"short read: {read} of {length} bytes at {request.Offset} inside a {source.Size}-byte source");
            }

            int total;
            if (!_structuredReplies)
            {
                total = NbdWire.WriteSimpleReply(buffer, NbdError.None, request.Cookie) + length;
            }
            else if (length == 0)
            {
                total = NbdWire.WriteStructuredHeader(buffer, done: true, NbdReplyType.None, request.Cookie, 0);
            }
            else
            {
                // One NBD_REPLY_TYPE_OFFSET_DATA chunk: the whole read, so DF is honoured for free.
                NbdWire.WriteStructuredHeader(buffer, done: true, NbdReplyType.OffsetData, request.Cookie, 8 + length);
                BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(NbdMagic.StructuredReplyHeaderSize), request.Offset);
                total = headerSize + length;
            }

            await SendAsync(buffer.AsMemory(0, total), cancellation).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// One NBD_REPLY_TYPE_BLOCK_STATUS chunk for base:allocation: the source's extents over the
    /// request, clipped to it; zero extents are reported as hole and zero.
    /// </summary>
    private async Task BlockStatusAsync(BlockSource source, NbdRequest request, CancellationToken cancellation)
    {
        var limit = request.Flags.HasFlag(NbdCommandFlags.RequestOne) ? 1 : MaxBlockStatusExtents;
        var descriptors = new List<(uint Length, uint Flags)>();
        var offset = (long)request.Offset;
        var end = offset + request.Length;
        foreach (var extent in source.GetExtents(offset, request.Length))
        {
            var flags = extent.Kind == ExtentKind.Zero ? NbdMagic.StateHole | NbdMagic.StateZero : 0u;
            for (var at = Math.Max(extent.Offset, offset); at < Math.Min(extent.End, end) && descriptors.Count < limit;)
            {
                var length = Math.Min(Math.Min(extent.End, end) - at, MaxBlockStatusExtentLength);
                if (descriptors.Count > 0 && descriptors[^1].Flags == flags && descriptors[^1].Length + length <= MaxBlockStatusExtentLength)
                {
                    descriptors[^1] = ((uint)(descriptors[^1].Length + length), flags);
                }
                else
                {
                    descriptors.Add(((uint)length, flags));
                }

                at += length;
            }

            if (descriptors.Count >= limit)
            {
                break;
            }
        }

        if (descriptors.Count == 0)
        {
            descriptors.Add((request.Length, 0)); // a source that lists nothing holds data, as far as we know
        }

        var payloadLength = 4 + (8 * descriptors.Count);
        var reply = new byte[NbdMagic.StructuredReplyHeaderSize + payloadLength];
        var position = NbdWire.WriteStructuredHeader(reply, done: true, NbdReplyType.BlockStatus, request.Cookie, payloadLength);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(position), BaseAllocationContextId);
        position += 4;
        foreach (var (length, flags) in descriptors)
        {
            BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(position), length);
            BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(position + 4), flags);
            position += 8;
        }

        await SendAsync(reply, cancellation).ConfigureAwait(false);
    }

    private Task ReplyAsync(NbdRequest request, NbdError error, CancellationToken cancellation)
    {
        var reply = new byte[NbdMagic.StructuredReplyHeaderSize + 6];
        var length = _structuredReplies && request.Command is NbdCommand.Read or NbdCommand.BlockStatus
            ? (error == NbdError.None
                ? NbdWire.WriteStructuredHeader(reply, done: true, NbdReplyType.None, request.Cookie, 0)
                : NbdWire.WriteStructuredError(reply, error, request.Cookie))
            : NbdWire.WriteSimpleReply(reply, error, request.Cookie);
        return SendAsync(reply.AsMemory(0, length), cancellation);
    }

    private delegate bool MessageParser(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined);

    /// <summary>Reads until <paramref name="parse"/> finds a whole message; false when the client closed first.</summary>
    private async Task<bool> ReadMessageAsync(MessageParser parse, CancellationToken cancellation)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellation).ConfigureAwait(false);
            var buffer = result.Buffer;
            bool parsed;
            SequencePosition consumed;
            SequencePosition examined;
            try
            {
                parsed = parse(buffer, out consumed, out examined);
            }
            catch
            {
                _reader.AdvanceTo(buffer.Start, buffer.End);
                throw;
            }

            _reader.AdvanceTo(consumed, examined);
            if (parsed)
            {
                return true;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return false;
            }
        }
    }

    private async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellation)
    {
        await _sendLock.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(bytes, cancellation).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }
}
