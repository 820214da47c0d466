using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using TurboOci.Storage;

namespace TurboOci.Registry;

public sealed partial class RegistryClient
{
    /// <summary>The default chunk of a chunked upload.</summary>
    public const int DefaultUploadChunk = 16 * 1024 * 1024;

    private static string BlobPath(ImageReference image, Digest digest) => $"/v2/{image.Repository}/blobs/{digest}";

    /// <summary>The size of a blob, or null when the registry does not have it.</summary>
    public Task<long?> HeadBlobAsync(ImageReference image, Digest digest, CancellationToken cancellationToken = default) =>
        ExecuteAsync(
            new Call(image, HttpMethod.Head, BlobPath(image, digest)) { UseMirrors = true, CacheRedirect = true, Accepts = s => s is HttpStatusCode.OK or HttpStatusCode.NotFound },
            (response, _) => Task.FromResult(response.StatusCode == HttpStatusCode.NotFound ? null : response.Content.Headers.ContentLength),
            cancellationToken);

    /// <summary>
    /// Reads exactly <paramref name="destination"/>.Length bytes of a blob at <paramref name="offset"/> with one
    /// Range GET (more only on retries). A short or over-long body is retried, never returned.
    /// </summary>
    /// <param name="filled">Called as the body arrives with how many bytes of <paramref name="destination"/> are filled
    /// (from 0 again when a retry starts), so callers can use the front of a large range early.</param>
    public Task ReadBlobRangeAsync(ImageReference image, Digest digest, long offset, Memory<byte> destination, CancellationToken cancellationToken = default,
        Action<int>? filled = null) =>
        ReadBlobRangeAsync(image, digest, offset, [destination], cancellationToken, filled);

    /// <summary>
    /// Reads the blob bytes at <paramref name="offset"/> into several buffers back to back, with one Range GET
    /// for all of them (so a merged fetch of several units lands in each unit's own array, without a copy).
    /// </summary>
    /// <param name="filled">As the body arrives: how many bytes of all buffers together are filled.</param>
    /// <param name="kept">
    /// How many bytes at the front the caller has already handed on: a retry after a connection broke asks only
    /// for the rest and never writes into those bytes again (they may be in use). Null: a retry rereads everything.
    /// </param>
    public Task ReadBlobRangeAsync(ImageReference image, Digest digest, long offset, IReadOnlyList<Memory<byte>> destinations,
        CancellationToken cancellationToken = default, Action<int>? filled = null, Func<int>? kept = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentNullException.ThrowIfNull(destinations);
        var total = 0;
        foreach (var destination in destinations)
        {
            total = checked(total + destination.Length);
        }

        if (total == 0)
        {
            return Task.CompletedTask;
        }

        var last = checked(offset + total - 1);
        var call = new Call(image, HttpMethod.Get, BlobPath(image, digest))
        {
            UseMirrors = true,
            CacheRedirect = true,
            ViaP2p = true,
            Range = new RangeHeaderValue(offset, last),
            ResumeFrom = kept is null ? null : () => kept(),
            Accepts = s => s is HttpStatusCode.OK or HttpStatusCode.PartialContent,
        };
        return ExecuteAsync(call, async (response, token) =>
        {
            // The same count the request's Range was built from: nothing is released between sending and reading.
            var skip = kept?.Invoke() ?? 0;
            var start = offset + skip;
            await using var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                if (response.Content.Headers.ContentRange is not { From: { } from, To: { } to } || from != start || to != last)
                {
                    throw new RegistryException($"{call.Describe}: asked for bytes {start}-{last}, got Content-Range '{response.Content.Headers.ContentRange}'");
                }
            }
            else
            {
                // A server that ignores Range sends the whole blob: skip to the offset.
                await SkipAsync(body, start, token).ConfigureAwait(false);
            }

            var position = 0;
            foreach (var destination in destinations)
            {
                var segmentStart = position;
                position += destination.Length;
                if (position <= skip)
                {
                    continue;
                }

                var from = Math.Max(0, skip - segmentStart);
                await FillAsync(body, destination[from..], call, token, filled is null ? null : count => filled(segmentStart + from + count)).ConfigureAwait(false);
            }

            if (response.StatusCode == HttpStatusCode.PartialContent && body.ReadByte() >= 0)
            {
                throw new RegistryException($"{call.Describe}: body longer than the {total - skip} bytes asked for");
            }

            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// Downloads a whole blob into <paramref name="destination"/>, verifying its digest. A connection lost
    /// mid-body resumes with a Range request from the last byte received.
    /// </summary>
    public async Task<long> DownloadBlobAsync(ImageReference image, Digest digest, Stream destination, IProgress<long>? progress = null,
        CancellationToken cancellationToken = default)
    {
        using var hash = digest.CreateHash();
        long received = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            await ExecuteAsync(new Call(image, HttpMethod.Get, BlobPath(image, digest))
            {
                UseMirrors = true,
                CacheRedirect = true,
                ViaP2p = true,
                Accepts = s => s is HttpStatusCode.OK or HttpStatusCode.PartialContent,
                ResumeFrom = () => received,
            }, async (response, token) =>
            {
                await using var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                if (received > 0 && response.StatusCode == HttpStatusCode.OK)
                {
                    await SkipAsync(body, received, token).ConfigureAwait(false);
                }

                int read;
                while ((read = await body.ReadAsync(buffer, token).ConfigureAwait(false)) > 0)
                {
                    // Bytes read are written, hashed and counted together or not at all: a timeout that cancelled
                    // the write after hashing would have the retry hash them twice (a digest mismatch), and a
                    // destination failure retried as a network error would leave a gap.
                    try
                    {
                        await destination.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (IOException e)
                    {
                        throw new RegistryException($"blob {digest}: writing the download failed: {e.Message}", null, e);
                    }

                    hash.AppendData(buffer, 0, read);
                    received += read;
                    progress?.Report(received);
                }

                return true;
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (Convert.ToHexStringLower(hash.GetCurrentHash()) != digest.Hex)
        {
            throw new TurboOciFormatException("OCI", "blob", 0, $"downloaded {received} bytes that do not match digest {digest}");
        }

        return received;
    }

    /// <summary>Downloads a small blob (config, referrer payload) into memory, bounded and verified.</summary>
    public async Task<byte[]> GetBlobBytesAsync(ImageReference image, Digest digest, int maxBytes = 16 * 1024 * 1024, CancellationToken cancellationToken = default)
    {
        using var buffer = new BoundedMemoryStream(maxBytes, $"blob {digest}");
        await DownloadBlobAsync(image, digest, buffer, null, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>
    /// Uploads a blob unless the repository already has it: tries a cross-repository mount from
    /// <paramref name="mountFrom"/> first, then a monolithic PUT (content up to <paramref name="chunkSize"/>)
    /// or a chunked PATCH sequence. Returns false when nothing had to be uploaded.
    /// </summary>
    public async Task<bool> PushBlobAsync(ImageReference image, Digest digest, long size, Func<Stream> openContent, string? mountFrom = null,
        int chunkSize = DefaultUploadChunk, CancellationToken cancellationToken = default)
    {
        if (await HeadBlobAsync(image with { }, digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            return false;
        }

        var mountQuery = mountFrom is not null && mountFrom != image.Repository ? $"?mount={Uri.EscapeDataString(digest.ToString())}&from={Uri.EscapeDataString(mountFrom)}" : "";
        var start = await ExecuteAsync(new Call(image, HttpMethod.Post, $"/v2/{image.Repository}/blobs/uploads/{mountQuery}")
        {
            Actions = "pull,push",
            ExtraPullRepositories = mountQuery.Length > 0 ? [mountFrom!] : [],
            Accepts = s => s is HttpStatusCode.Accepted or HttpStatusCode.Created,
        }, (response, _) => Task.FromResult((response.StatusCode, response.Headers.Location)), cancellationToken).ConfigureAwait(false);
        if (start.StatusCode == HttpStatusCode.Created)
        {
            Options.Log?.Invoke($"mounted {digest} into {image.Repository} from {mountFrom}");
            return true;
        }

        var location = start.Location ?? throw new RegistryException($"upload to {image.Repository} started without a Location");
        if (size <= chunkSize)
        {
            await PutUploadAsync(image, location, digest, openContent, 0, size, cancellationToken).ConfigureAwait(false);
            return true;
        }

        for (long sent = 0; sent < size; sent += chunkSize)
        {
            var length = Math.Min(chunkSize, size - sent);
            var from = sent;
            location = await ExecuteAsync(new Call(image, HttpMethod.Patch, PathOf(image, location))
            {
                Actions = "pull,push",
                Content = () => RangeContent(openContent, from, length, withRange: true),
                Accepts = s => s == HttpStatusCode.Accepted,
            }, (response, _) => Task.FromResult(response.Headers.Location ?? location), cancellationToken).ConfigureAwait(false);
        }

        await PutUploadAsync(image, location, digest, openContent, size, 0, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private Task PutUploadAsync(ImageReference image, Uri location, Digest digest, Func<Stream> openContent, long from, long length, CancellationToken cancellationToken)
    {
        var path = PathOf(image, location);
        path += (path.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest.ToString());
        return ExecuteAsync(new Call(image, HttpMethod.Put, path)
        {
            Actions = "pull,push",
            Content = () => RangeContent(openContent, from, length, withRange: false),
            Accepts = s => s == HttpStatusCode.Created,
        }, (_, _) => Task.FromResult(true), cancellationToken);
    }

    /// <summary>Upload locations may be absolute or relative; we keep the path and query and reuse our endpoint.</summary>
    private static string PathOf(ImageReference image, Uri location) =>
        location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString.StartsWith('/') ? location.OriginalString : $"/v2/{image.Repository}/blobs/uploads/{location.OriginalString}";

    private static HttpContent RangeContent(Func<Stream> openContent, long from, long length, bool withRange)
    {
        var stream = openContent();
        if (from > 0)
        {
            stream.Seek(from, SeekOrigin.Begin);
        }

        var content = new StreamContent(new BoundedReadStream(stream, length));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.ContentLength = length;
        if (withRange)
        {
            // Distribution wants "start-end" without the "bytes=" prefix on PATCH.
            content.Headers.TryAddWithoutValidation("Content-Range", string.Create(CultureInfo.InvariantCulture, $"{from}-{from + length - 1}"));
        }

        return content;
    }

    private static async Task SkipAsync(Stream body, long count, CancellationToken cancellationToken)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (count > 0)
            {
                var read = await body.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, count)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new TransientException("body ended before the requested offset");
                }

                count -= read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static async Task FillAsync(Stream body, Memory<byte> destination, Call call, CancellationToken cancellationToken, Action<int>? progress = null)
    {
        var filled = 0;
        while (filled < destination.Length)
        {
            var read = await body.ReadAsync(destination[filled..], cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new TransientException($"{call.Describe}: body ended after {filled} of {destination.Length} bytes");
            }

            filled += read;
            progress?.Invoke(filled);
        }
    }
}
