using System.Runtime.InteropServices;
using TurboOci.Frontends.Tests.Abi;
using TurboOci.Interop.Linux;

namespace TurboOci.Frontends.Tests.Tcmu;

/// <summary>
/// The TCMU constants and the ring layout facts the handler relies on, against linux/target_core_user.h compiled by
/// gcc (the structs' sizes and every field offset are checked with the other kernel structures in KernelAbiTests).
/// </summary>
public sealed class TcmuAbiTests
{
    private static readonly (string C, long Ours)[] s_values =
    [
        ("TCMU_MAILBOX_VERSION", TcmuConstants.MailboxVersion),
        ("ALIGN_SIZE", TcmuConstants.AlignSize),
        ("TCMU_MAILBOX_FLAG_CAP_OOOC", TcmuConstants.MailboxFlagOutOfOrderCompletion),
        ("TCMU_MAILBOX_FLAG_CAP_READ_LEN", TcmuConstants.MailboxFlagReadLength),
        ("TCMU_MAILBOX_FLAG_CAP_TMR", TcmuConstants.MailboxFlagTaskManagement),
        ("TCMU_MAILBOX_FLAG_CAP_KEEP_BUF", TcmuConstants.MailboxFlagKeepBuffer),
        ("TCMU_OP_MASK", TcmuConstants.OpMask),
        ("TCMU_OP_PAD", TcmuConstants.OpPad),
        ("TCMU_OP_CMD", TcmuConstants.OpCommand),
        ("TCMU_OP_TMR", TcmuConstants.OpTaskManagement),
        ("TCMU_UFLAG_UNKNOWN_OP", TcmuConstants.UserFlagUnknownOp),
        ("TCMU_UFLAG_READ_LEN", TcmuConstants.UserFlagReadLength),
        ("TCMU_UFLAG_KEEP_BUF", TcmuConstants.UserFlagKeepBuffer),
        ("TCMU_SENSE_BUFFERSIZE", TcmuConstants.SenseBufferSize),
        ("offsetof(struct tcmu_cmd_entry, req.iov)", TcmuCommandEntry.RequestIovecOffset),
        ("sizeof(struct iovec)", 16),
        ("offsetof(struct iovec, iov_len)", 8),
        ("sizeof(struct tcmu_mailbox)", Marshal.SizeOf<TcmuMailbox>()),
        ("sizeof(((struct tcmu_cmd_entry *)0)->rsp.sense_buffer)", TcmuConstants.SenseBufferSize),
    ];

    private static readonly Lazy<IReadOnlyDictionary<string, long>> s_kernel = new(CompileAndRun);

    public static TheoryData<string> Values() => new(s_values.Select(v => v.C));

    [Theory]
    [MemberData(nameof(Values))]
    public void ValueMatchesTheKernelHeader(string name)
    {
        Assert.Equal(s_kernel.Value[name], s_values.Single(v => v.C == name).Ours);
    }

    private static IReadOnlyDictionary<string, long> CompileAndRun() =>
        KernelHeaderProbe.Evaluate(["linux/target_core_user.h"], s_values.Select(v => v.C));
}
