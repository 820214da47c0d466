using TurboOci.Images.Indexing;

namespace TurboOci.Images.Tests.Indexing;

/// <summary>The indexer's pipeline: what the consumer reads and skips is the source, whatever the chunking, with recycled buffers.</summary>
public sealed class PipelinedReadStreamTests
{
    [Theory]
    [InlineData(1000, 1)]
    [InlineData(4096, 3)]
    [InlineData(65536, 8)]
    public void ReadsAndSkipsGiveTheSourceBytesInOrder(int chunkSize, int depth)
    {
        var source = new byte[1_000_003];
        new Random(5).NextBytes(source);
        var random = new Random(chunkSize);
        using var pipeline = new PipelinedReadStream(new MemoryStream(source), chunkSize, depth);
        var position = 0;
        var buffer = new byte[9000];
        while (true)
        {
            var want = random.Next(1, buffer.Length);
            if (random.Next(3) == 0)
            {
                var skipped = (int)pipeline.Skip(want);
                Assert.InRange(skipped, source.Length == position ? 0 : 1, want);
                position += skipped;
                if (skipped == 0)
                {
                    break;
                }

                continue;
            }

            var read = pipeline.Read(buffer, 0, want);
            if (read == 0)
            {
                break;
            }

            Assert.True(source.AsSpan(position, read).SequenceEqual(buffer.AsSpan(0, read)), $"bytes at {position} differ");
            position += read;
        }

        Assert.Equal(source.Length, position);
        Assert.Equal(0, pipeline.Read(buffer));
        Assert.Equal(0, pipeline.Skip(10));
    }

    [Fact]
    public void TheSourcesFailureReachesTheReader()
    {
        using var pipeline = new PipelinedReadStream(new FailingStream(), 1024, 2);
        var buffer = new byte[4096];
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            while (pipeline.Read(buffer) > 0)
            {
            }
        });
        Assert.Equal("damaged at 3000", e.Message);
    }

    private sealed class FailingStream : TurboOci.Storage.ReadOnlyForwardStream
    {
        private int _position;

        public override int Read(Span<byte> buffer)
        {
            if (_position >= 3000)
            {
                throw new InvalidDataException("damaged at 3000");
            }

            var n = Math.Min(buffer.Length, 500);
            _position += n;
            return n;
        }
    }
}
