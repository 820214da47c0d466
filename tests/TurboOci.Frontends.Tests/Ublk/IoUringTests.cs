using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TurboOci.Interop.Linux;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Ublk;

/// <summary>Our io_uring binding against this machine's kernel: NOPs, file reads and URING_CMD submissions really round-trip.</summary>
public sealed class IoUringTests
{
    [Fact]
    public void Nops_come_back_with_their_user_data_in_submission_order()
    {
        using var ring = IoUring.Create(8);
        Assert.Equal(64, ring.EntrySize);
        Assert.Equal(8u, ring.SubmissionEntries);
        for (var i = 0; i < 5; i++)
        {
            ref var entry = ref ring.Next();
            entry.Opcode = IoUringConstants.OpNop;
            entry.UserData = 1000 + (ulong)i;
        }

        Assert.Equal(5, ring.Submit(waitFor: 5));
        var seen = new List<ulong>();
        while (ring.TryReap(out var completion))
        {
            Assert.Equal(0, completion.Result);
            seen.Add(completion.UserData);
        }

        Assert.Equal([1000ul, 1001, 1002, 1003, 1004], seen);
        Assert.False(ring.TryReap(out _));
    }

    [Fact]
    public void Reads_of_a_file_at_several_offsets_return_its_bytes()
    {
        using var temp = new TempDir("turbooci-iouring-");
        var bytes = RandomNumberGenerator.GetBytes(64 << 10);
        var path = temp.File("data");
        File.WriteAllBytes(path, bytes);
        using var file = File.OpenHandle(path);
        using var ring = IoUring.Create(4, IoUringConstants.SetupSubmissionEntry128);
        Assert.Equal(128, ring.EntrySize);
        var buffers = new byte[3][];
        var handles = new GCHandle[3];
        long[] offsets = [0, 4096, 60000];
        try
        {
            for (var i = 0; i < 3; i++)
            {
                buffers[i] = new byte[4096];
                handles[i] = GCHandle.Alloc(buffers[i], GCHandleType.Pinned);
                ref var entry = ref ring.Next();
                entry.Opcode = IoUringConstants.OpRead;
                entry.Fd = (int)file.DangerousGetHandle();
                entry.Address = (ulong)handles[i].AddrOfPinnedObject();
                entry.Length = 4096;
                entry.Offset = (ulong)offsets[i];
                entry.UserData = (ulong)i;
            }

            ring.Submit(waitFor: 3);
            var results = new Dictionary<ulong, int>();
            while (results.Count < 3)
            {
                if (!ring.TryReap(out var completion))
                {
                    ring.Submit(waitFor: 1);
                    continue;
                }

                results[completion.UserData] = completion.Result;
            }

            for (var i = 0; i < 3; i++)
            {
                var expected = bytes.AsSpan((int)offsets[i], (int)Math.Min(4096, bytes.Length - offsets[i]));
                Assert.Equal(expected.Length, results[(ulong)i]);
                Assert.True(expected.SequenceEqual(buffers[i].AsSpan(0, expected.Length)), $"read {i} differs");
            }
        }
        finally
        {
            foreach (var handle in handles.Where(h => h.IsAllocated))
            {
                handle.Free();
            }
        }
    }

    [Fact]
    public void A_uring_command_reaches_the_file_and_one_without_uring_cmd_support_refuses_it()
    {
        // A regular file has no uring_cmd handler: the kernel answers the command itself with EOPNOTSUPP,
        // which shows the opcode, fd and payload were accepted as a URING_CMD and routed to the file.
        using var temp = new TempDir("turbooci-iouring-");
        File.WriteAllBytes(temp.File("plain"), [1, 2, 3]);
        using var file = File.OpenHandle(temp.File("plain"));
        using var ring = IoUring.Create(2, IoUringConstants.SetupSubmissionEntry128);
        ring.PrepareCommand((int)file.DangerousGetHandle(), 0x1234, new byte[80], 77);
        ring.Submit(waitFor: 1);
        Assert.True(ring.TryReap(out var completion));
        Assert.Equal(77ul, completion.UserData);
        Assert.Equal(-(int)Errno.EOPNOTSUPP, completion.Result);
    }

    [Fact]
    public void A_full_submission_ring_and_an_oversized_command_are_refused_before_the_kernel_sees_them()
    {
        using var ring = IoUring.Create(2);
        ring.Next().Opcode = IoUringConstants.OpNop;
        ring.Next().Opcode = IoUringConstants.OpNop;
        Assert.Throws<InvalidOperationException>(() => ring.Next());
        Assert.Equal(2, ring.Submit(waitFor: 2));
        Assert.Equal(0u, ring.Pending);
        // 64-byte entries have 16 bytes of command payload: a 32-byte ublk control command needs SQE128.
        Assert.Throws<ArgumentException>(() => ring.PrepareCommand(0, 1, new byte[32], 0));
    }

    [Fact]
    public void Setup_with_an_impossible_size_reports_the_kernels_errno()
    {
        var e = Assert.Throws<ErrnoException>(() => IoUring.Create(0));
        Assert.Equal(Errno.EINVAL, e.Errno);
    }
}
