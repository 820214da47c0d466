using TurboOci.Storage;
using TurboOci.Storage.Compression;

namespace TurboOci.Images.Packaging;

/// <summary>
/// Inflates a gzip stream (one or more members) with zlib, strictly: every member's CRC-32 and length trailer
/// is checked by zlib, a stream that ends inside a member (even inside its 8-byte trailer, which .NET's
/// GZipStream lets pass) is an error, and bytes after the last member must be another gzip member. Errors are
/// <see cref="TurboOciFormatException"/>s carrying the compressed offset.
/// </summary>
internal sealed class CheckedGzipReadStream(Stream compressed, IInflaterFactory inflaters) : ReadOnlyForwardStream
{
    private const string Format = "gzip";
    private readonly byte[] _input = new byte[1 << 16];
    private readonly IRawInflater _inflater = inflaters.Create(InflateWrapper.GzipOrZlib);
    private int _start;
    private int _end;
    private long _consumed; // compressed bytes handed to zlib so far
    private long _produced;
    private bool _inMember;
    private bool _finished;

    public override long Position
    {
        get => _produced;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        while (!_finished && buffer.Length > 0)
        {
            if (!_inMember && !StartMember())
            {
                _finished = true;
                break;
            }

            if (_start == _end && !Fill())
            {
                TurboOciFormatException.Throw(Format, "member", _consumed, $"the gzip stream is truncated: it ends inside a member after {_produced} inflated bytes");
            }

            InflateResult result;
            try
            {
                result = _inflater.Inflate(_input.AsSpan(_start, _end - _start), buffer, InflateFlush.NoFlush);
            }
            catch (InvalidDataException e)
            {
                throw new TurboOciFormatException(Format, "deflate data", _consumed, $"{e.Message} (after {_produced} inflated bytes)", e);
            }

            _start += result.Consumed;
            _consumed += result.Consumed;
            _produced += result.Produced;
            if (result.Status == InflateStatus.StreamEnd)
            {
                _inMember = false;
            }

            if (result.Produced > 0)
            {
                return result.Produced;
            }
        }

        return 0;
    }

    /// <summary>At a member boundary: false at the clean end of the stream, else checks the magic and resets zlib.</summary>
    private bool StartMember()
    {
        if (_end - _start < 2)
        {
            // Move the odd byte to the front and read more.
            Array.Copy(_input, _start, _input, 0, _end - _start);
            _end -= _start;
            _start = 0;
            while (_end < 2)
            {
                var read = compressed.Read(_input, _end, _input.Length - _end);
                if (read == 0)
                {
                    break;
                }

                _end += read;
            }
        }

        if (_end == _start)
        {
            if (_consumed == 0)
            {
                TurboOciFormatException.Throw(Format, "magic", 0, "the blob is empty, not gzip");
            }

            return false;
        }

        if (_end - _start < 2 || _input[_start] != 0x1F || _input[_start + 1] != 0x8B)
        {
            TurboOciFormatException.Throw(Format, "magic", _consumed,
                _consumed == 0 ? "the blob is not gzip (no 1f 8b magic)" : "bytes after the last gzip member are not another member");
        }

        _inflater.Reset();
        _inMember = true;
        return true;
    }

    private bool Fill()
    {
        _start = 0;
        _end = compressed.Read(_input, 0, _input.Length);
        return _end > 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inflater.Dispose();
        }

        base.Dispose(disposing);
    }
}
