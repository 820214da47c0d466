using System.Runtime.InteropServices;
using TurboOci.Frontends.Tests.Abi;
using TurboOci.Interop.Linux;

namespace TurboOci.Frontends.Tests.Ublk;

/// <summary>
/// The io_uring structures and constants the ublk server shares with the kernel, and the ublk constants it
/// adds (result codes, the ioctl-encoded opcodes), checked against linux/io_uring.h and linux/ublk_cmd.h:
/// a generated C file prints sizeof, offsetof and the values, which must equal ours. (The ublk structs
/// themselves are in KernelAbiTests.)
/// </summary>
public sealed class UblkAbiTests
{
    private static readonly (string C, Type Ours, string[] Fields)[] s_structs =
    [
        ("io_sqring_offsets", typeof(IoSubmissionRingOffsets), ["head", "tail", "ring_mask", "ring_entries", "flags", "dropped", "array", "resv1", "resv2"]),
        ("io_cqring_offsets", typeof(IoCompletionRingOffsets), ["head", "tail", "ring_mask", "ring_entries", "overflow", "cqes", "flags", "resv1", "resv2"]),
        ("io_uring_params", typeof(IoUringParameters), ["sq_entries", "cq_entries", "flags", "sq_thread_cpu", "sq_thread_idle", "features", "wq_fd", "resv", "sq_off", "cq_off"]),
        ("io_uring_sqe", typeof(IoUringSubmissionEntry), ["opcode", "flags", "ioprio", "fd", "off", "addr", "len", "rw_flags", "user_data", "buf_index", "personality", "splice_fd_in", "addr3", "__pad2"]),
        ("io_uring_cqe", typeof(IoUringCompletionEntry), ["user_data", "res", "flags"]),
    ];

    private static readonly (string C, long Ours)[] s_constants =
    [
        ("IORING_OP_NOP", IoUringConstants.OpNop),
        ("IORING_OP_READ", IoUringConstants.OpRead),
        ("IORING_OP_URING_CMD", IoUringConstants.OpUringCommand),
        ("IORING_SETUP_SQE128", IoUringConstants.SetupSubmissionEntry128),
        ("IORING_ENTER_GETEVENTS", IoUringConstants.EnterGetEvents),
        ("IORING_FEAT_SINGLE_MMAP", IoUringConstants.FeatureSingleMmap),
        ("IORING_OFF_SQ_RING", IoUringConstants.OffsetSubmissionRing),
        ("IORING_OFF_CQ_RING", IoUringConstants.OffsetCompletionRing),
        ("IORING_OFF_SQES", IoUringConstants.OffsetSubmissionEntries),
        ("offsetof(struct io_uring_sqe, cmd_op)", 8),
        ("offsetof(struct io_uring_sqe, cmd)", IoUring.CommandOffset),
        ("__NR_io_uring_setup", IoUringConstants.SystemCallSetup),
        ("__NR_io_uring_enter", IoUringConstants.SystemCallEnter),
        ("UBLK_IO_RES_OK", UblkConstants.IoResultOk),
        ("UBLK_IO_RES_ABORT", UblkConstants.IoResultAbort),
        ("UBLKSRV_CMD_BUF_OFFSET", UblkConstants.CommandBufferOffset),
        // The host's header may predate UBLK_F_CMD_IOCTL_ENCODE and the UBLK_U_* names: their definitions are spelled out.
        ("_IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandAddDevice)),
        ("_IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandSetParameters)),
        ("_IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandStartDevice)),
        ("_IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandStopDevice)),
        ("_IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandDeleteDevice)),
        ("_IOWR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)", UblkConstants.EncodeControl(UblkConstants.CommandGetDeviceInfo)),
        ("_IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)", UblkConstants.EncodeIo(UblkConstants.IoFetchRequest)),
        ("_IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)", UblkConstants.EncodeIo(UblkConstants.IoCommitAndFetchRequest)),
    ];

    private static readonly Lazy<IReadOnlyDictionary<string, long>> s_kernel = new(() => KernelHeaderProbe.Evaluate(
        ["errno.h", "sys/syscall.h", "linux/ioctl.h", "linux/io_uring.h", "linux/ublk_cmd.h"],
        s_structs.SelectMany(s => KernelHeaderProbe.Layout(s.C, s.Fields)).Concat(s_constants.Select(c => c.C))));

    public static TheoryData<string> Structs() => new(s_structs.Select(s => s.C));

    public static TheoryData<string> Constants() => new(s_constants.Select(c => c.C));

    [Theory]
    [MemberData(nameof(Structs))]
    public void StructSizeAndEveryFieldOffsetMatchTheKernelHeader(string name)
    {
        var (_, ours, fields) = s_structs.Single(s => s.C == name);
        KernelHeaderProbe.AssertLayout(s_kernel.Value, name, ours, fields);
    }

    [Theory]
    [MemberData(nameof(Constants))]
    public void ConstantMatchesTheKernelHeader(string name)
    {
        Assert.Equal(s_kernel.Value[name], s_constants.Single(c => c.C == name).Ours);
    }

    [Fact]
    public void The_control_command_fills_the_payload_of_a_128_byte_entry_and_the_io_command_fits_a_64_byte_one()
    {
        Assert.True(Marshal.SizeOf<UblkControlCommand>() <= 128 - IoUring.CommandOffset);
        Assert.True(Marshal.SizeOf<UblkControlCommand>() > 64 - IoUring.CommandOffset);
        Assert.True(Marshal.SizeOf<UblkIoCommand>() <= 64 - IoUring.CommandOffset);
    }
}
