using TurboOci.Frontends.Nbd;
using TurboOci.Interop.Fuse;
using TurboOci.Interop.Linux;
using LoopDevice = TurboOci.Interop.Linux.LoopDevice;

namespace TurboOci.Frontends.Tests.Abi;

/// <summary>
/// Every structure and constant we share with the kernel, checked against the kernel's own uapi
/// headers (linux-libc-dev): a generated C file is compiled with gcc and prints sizeof, offsetof
/// and macro values, which must equal what our structs and constants say (through <see cref="KernelHeaderProbe"/>).
/// </summary>
public sealed class KernelAbiTests
{
    /// <summary>C struct, our struct, and the C fields in declaration order (paired with ours by position).</summary>
    private static readonly (string C, Type Ours, string[] Fields)[] s_structs =
    [
        ("fuse_in_header", typeof(FuseInHeader), ["len", "opcode", "unique", "nodeid", "uid", "gid", "pid", "total_extlen", "padding"]),
        ("fuse_out_header", typeof(FuseOutHeader), ["len", "error", "unique"]),
        ("fuse_init_in", typeof(FuseInitIn), ["major", "minor", "max_readahead", "flags", "flags2", "unused"]),
        ("fuse_init_out", typeof(FuseInitOut), ["major", "minor", "max_readahead", "flags", "max_background", "congestion_threshold", "max_write", "time_gran", "max_pages", "map_alignment", "flags2", "unused"]),
        ("fuse_attr", typeof(FuseAttr), ["ino", "size", "blocks", "atime", "mtime", "ctime", "atimensec", "mtimensec", "ctimensec", "mode", "nlink", "uid", "gid", "rdev", "blksize", "flags"]),
        ("fuse_entry_out", typeof(FuseEntryOut), ["nodeid", "generation", "entry_valid", "attr_valid", "entry_valid_nsec", "attr_valid_nsec", "attr"]),
        ("fuse_attr_out", typeof(FuseAttrOut), ["attr_valid", "attr_valid_nsec", "dummy", "attr"]),
        ("fuse_getattr_in", typeof(FuseGetAttrIn), ["getattr_flags", "dummy", "fh"]),
        ("fuse_setattr_in", typeof(FuseSetAttrIn), ["valid", "padding", "fh", "size", "lock_owner", "atime", "mtime", "ctime", "atimensec", "mtimensec", "ctimensec", "mode", "unused4", "uid", "gid", "unused5"]),
        ("fuse_open_in", typeof(FuseOpenIn), ["flags", "open_flags"]),
        ("fuse_open_out", typeof(FuseOpenOut), ["fh", "open_flags", "padding"]),
        ("fuse_read_in", typeof(FuseReadIn), ["fh", "offset", "size", "read_flags", "lock_owner", "flags", "padding"]),
        ("fuse_write_in", typeof(FuseWriteIn), ["fh", "offset", "size", "write_flags", "lock_owner", "flags", "padding"]),
        ("fuse_write_out", typeof(FuseWriteOut), ["size", "padding"]),
        ("fuse_release_in", typeof(FuseReleaseIn), ["fh", "flags", "release_flags", "lock_owner"]),
        ("fuse_flush_in", typeof(FuseFlushIn), ["fh", "unused", "padding", "lock_owner"]),
        ("fuse_fsync_in", typeof(FuseFsyncIn), ["fh", "fsync_flags", "padding"]),
        ("fuse_kstatfs", typeof(FuseKStatFs), ["blocks", "bfree", "bavail", "files", "ffree", "bsize", "namelen", "frsize", "padding", "spare"]),
        ("fuse_statfs_out", typeof(FuseStatFsOut), ["st"]),
        ("fuse_forget_in", typeof(FuseForgetIn), ["nlookup"]),
        ("fuse_batch_forget_in", typeof(FuseBatchForgetIn), ["count", "dummy"]),
        ("fuse_forget_one", typeof(FuseForgetOne), ["nodeid", "nlookup"]),
        ("fuse_interrupt_in", typeof(FuseInterruptIn), ["unique"]),
        ("fuse_fallocate_in", typeof(FuseFallocateIn), ["fh", "offset", "length", "mode", "padding"]),
        ("fuse_dirent", typeof(FuseDirent), ["ino", "off", "namelen", "type"]),
        ("fuse_direntplus", typeof(FuseDirentPlus), ["entry_out", "dirent"]),
        ("loop_info64", typeof(LoopInfo64), ["lo_device", "lo_inode", "lo_rdevice", "lo_offset", "lo_sizelimit", "lo_number", "lo_encrypt_type", "lo_encrypt_key_size", "lo_flags", "lo_file_name", "lo_crypt_name", "lo_encrypt_key", "lo_init"]),
        ("loop_config", typeof(LoopConfig), ["fd", "block_size", "info", "__reserved"]),
        ("tcmu_mailbox", typeof(TcmuMailbox), ["version", "flags", "cmdr_off", "cmdr_size", "cmd_head", "cmd_tail"]),
        ("tcmu_cmd_entry_hdr", typeof(TcmuCommandEntryHeader), ["len_op", "cmd_id", "kflags", "uflags"]),
        ("tcmu_cmd_entry", typeof(TcmuCommandEntry), ["hdr", "req.iov_cnt", "req.iov_bidi_cnt", "req.iov_dif_cnt", "req.cdb_off", "req.__pad1", "req.__pad2", "rsp.scsi_status", "rsp.__pad1", "rsp.__pad2", "rsp.read_len", "rsp.sense_buffer"]),
        ("ublksrv_ctrl_cmd", typeof(UblkControlCommand), ["dev_id", "queue_id", "len", "addr", "data"]),
        ("ublksrv_ctrl_dev_info", typeof(UblkDeviceInfo), ["nr_hw_queues", "queue_depth", "state", "pad0", "max_io_buf_bytes", "dev_id", "ublksrv_pid", "pad1", "flags", "ublksrv_flags", "reserved0", "reserved1", "reserved2"]),
        ("ublksrv_io_desc", typeof(UblkIoDescriptor), ["op_flags", "nr_sectors", "start_sector", "addr"]),
        ("ublksrv_io_cmd", typeof(UblkIoCommand), ["q_id", "tag", "result", "addr"]),
        ("ublk_param_basic", typeof(UblkBasicParameters), ["attrs", "logical_bs_shift", "physical_bs_shift", "io_opt_shift", "io_min_shift", "max_sectors", "chunk_sectors", "dev_sectors", "virt_boundary_mask"]),
        ("ublk_param_discard", typeof(UblkDiscardParameters), ["discard_alignment", "discard_granularity", "max_discard_sectors", "max_write_zeroes_sectors", "max_discard_segments", "reserved0"]),
        ("ublk_params", typeof(UblkParameters), ["len", "types", "basic", "discard"]),
        ("io_sqring_offsets", typeof(IoSubmissionRingOffsets), ["head", "tail", "ring_mask", "ring_entries", "flags", "dropped", "array", "resv1", "resv2"]),
        ("io_cqring_offsets", typeof(IoCompletionRingOffsets), ["head", "tail", "ring_mask", "ring_entries", "overflow", "cqes", "flags", "resv1", "resv2"]),
        ("io_uring_params", typeof(IoUringParameters), ["sq_entries", "cq_entries", "flags", "sq_thread_cpu", "sq_thread_idle", "features", "wq_fd", "resv", "sq_off", "cq_off"]),
        ("io_uring_sqe", typeof(IoUringSubmissionEntry), ["opcode", "flags", "ioprio", "fd", "off", "addr", "len", "rw_flags", "user_data", "buf_index", "personality", "splice_fd_in", "addr3", "__pad2"]),
        ("io_uring_cqe", typeof(IoUringCompletionEntry), ["user_data", "res", "flags"]),
    ];

    /// <summary>C macro or enumerator, and our value for it.</summary>
    private static readonly (string C, long Ours)[] s_constants =
    [
        ("FUSE_KERNEL_VERSION", FuseConstants.KernelVersion),
        ("FUSE_KERNEL_MINOR_VERSION", FuseConstants.KernelMinorVersion),
        ("FUSE_ROOT_ID", (long)FuseConstants.RootId),
        ("FUSE_MIN_READ_BUFFER", FuseConstants.MinimumReadBuffer),
        ("FUSE_ASYNC_READ", FuseConstants.InitAsyncRead),
        ("FUSE_BIG_WRITES", FuseConstants.InitBigWrites),
        ("FUSE_DO_READDIRPLUS", FuseConstants.InitDoReadDirPlus),
        ("FUSE_ASYNC_DIO", FuseConstants.InitAsyncDio),
        ("FUSE_PARALLEL_DIROPS", FuseConstants.InitParallelDirOps),
        ("FUSE_MAX_PAGES", FuseConstants.InitMaxPages),
        ("FUSE_INIT_EXT", FuseConstants.InitExtended),
        ("FOPEN_DIRECT_IO", FuseConstants.OpenDirectIo),
        ("FOPEN_KEEP_CACHE", FuseConstants.OpenKeepCache),
        ("FOPEN_PARALLEL_DIRECT_WRITES", FuseConstants.OpenParallelDirectWrites),
        ("FATTR_MODE", FuseConstants.SetAttrMode),
        ("FATTR_UID", FuseConstants.SetAttrUid),
        ("FATTR_GID", FuseConstants.SetAttrGid),
        ("FATTR_SIZE", FuseConstants.SetAttrSize),
        ("FATTR_ATIME", FuseConstants.SetAttrAtime),
        ("FATTR_MTIME", FuseConstants.SetAttrMtime),
        ("FATTR_FH", FuseConstants.SetAttrFh),
        ("FATTR_ATIME_NOW", FuseConstants.SetAttrAtimeNow),
        ("FATTR_MTIME_NOW", FuseConstants.SetAttrMtimeNow),
        ("FATTR_LOCKOWNER", FuseConstants.SetAttrLockOwner),
        ("FATTR_CTIME", FuseConstants.SetAttrCtime),
        ("FATTR_KILL_SUIDGID", FuseConstants.SetAttrKillSuidGid),
        ("FALLOC_FL_KEEP_SIZE", FuseConstants.FallocKeepSize),
        ("FALLOC_FL_PUNCH_HOLE", FuseConstants.FallocPunchHole),
        ("FALLOC_FL_ZERO_RANGE", FuseConstants.FallocZeroRange),
        ("NBD_REQUEST_MAGIC", NbdMagic.Request),
        ("NBD_REPLY_MAGIC", NbdMagic.SimpleReply),
        ("NBD_CMD_READ", (long)NbdCommand.Read),
        ("NBD_CMD_WRITE", (long)NbdCommand.Write),
        ("NBD_CMD_DISC", (long)NbdCommand.Disconnect),
        ("NBD_CMD_FLUSH", (long)NbdCommand.Flush),
        ("NBD_CMD_TRIM", (long)NbdCommand.Trim),
        ("NBD_FLAG_HAS_FLAGS", (long)NbdTransmissionFlags.HasFlags),
        ("NBD_FLAG_READ_ONLY", (long)NbdTransmissionFlags.ReadOnly),
        ("NBD_FLAG_SEND_FLUSH", (long)NbdTransmissionFlags.SendFlush),
        ("NBD_FLAG_SEND_FUA", (long)NbdTransmissionFlags.SendFua),
        ("NBD_FLAG_SEND_TRIM", (long)NbdTransmissionFlags.SendTrim),
        ("NBD_FLAG_CAN_MULTI_CONN", (long)NbdTransmissionFlags.CanMultiConnection),
        // The kernel's 32-bit "type" holds the command flags in its high half: big-endian, they come first.
        ("NBD_CMD_FLAG_FUA >> 16", (long)NbdCommandFlags.Fua),
        ("sizeof(struct nbd_request)", NbdMagic.RequestSize),
        ("offsetof(struct nbd_request, magic)", NbdMagic.RequestMagicOffset),
        ("offsetof(struct nbd_request, type)", NbdMagic.RequestFlagsOffset),
        ("offsetof(struct nbd_request, type) + 2", NbdMagic.RequestTypeOffset),
        ("offsetof(struct nbd_request, handle)", NbdMagic.RequestCookieOffset),
        ("offsetof(struct nbd_request, from)", NbdMagic.RequestOffsetOffset),
        ("offsetof(struct nbd_request, len)", NbdMagic.RequestLengthOffset),
        ("sizeof(struct nbd_reply)", NbdMagic.SimpleReplySize),
        ("offsetof(struct nbd_reply, magic)", NbdMagic.ReplyMagicOffset),
        ("offsetof(struct nbd_reply, error)", NbdMagic.ReplyErrorOffset),
        ("offsetof(struct nbd_reply, handle)", NbdMagic.ReplyCookieOffset),
        ("LOOP_SET_FD", LoopDevice.LoopSetFd),
        ("LOOP_CLR_FD", LoopDevice.LoopClearFd),
        ("LOOP_CONFIGURE", LoopDevice.LoopConfigure),
        ("LOOP_CTL_GET_FREE", LoopDevice.LoopControlGetFree),
        ("LO_FLAGS_READ_ONLY", LoopDevice.FlagReadOnly),
        ("LO_FLAGS_AUTOCLEAR", LoopDevice.FlagAutoClear),
        ("LO_FLAGS_DIRECT_IO", LoopDevice.FlagDirectIo),
        ("LO_NAME_SIZE", LoopInfo64.NameLength),
        ("LO_KEY_SIZE", LoopInfo64.KeyLength),
        ("O_NONBLOCK", (long)OpenFlags.NonBlocking),
        ("O_CLOEXEC", (long)OpenFlags.CloseOnExec),
        ("MS_RDONLY", (long)MountFlags.ReadOnly),
        ("MS_NOSUID", (long)MountFlags.NoSetUid),
        ("MS_NODEV", (long)MountFlags.NoDevices),
        ("MNT_DETACH", (long)UnmountFlags.Detach),
        ("UBLK_CMD_GET_QUEUE_AFFINITY", UblkConstants.CommandGetQueueAffinity),
        ("UBLK_CMD_GET_DEV_INFO", UblkConstants.CommandGetDeviceInfo),
        ("UBLK_CMD_ADD_DEV", UblkConstants.CommandAddDevice),
        ("UBLK_CMD_DEL_DEV", UblkConstants.CommandDeleteDevice),
        ("UBLK_CMD_START_DEV", UblkConstants.CommandStartDevice),
        ("UBLK_CMD_STOP_DEV", UblkConstants.CommandStopDevice),
        ("UBLK_CMD_SET_PARAMS", UblkConstants.CommandSetParameters),
        ("UBLK_CMD_GET_PARAMS", UblkConstants.CommandGetParameters),
        ("UBLK_CMD_START_USER_RECOVERY", UblkConstants.CommandStartUserRecovery),
        ("UBLK_CMD_END_USER_RECOVERY", UblkConstants.CommandEndUserRecovery),
        ("UBLK_IO_FETCH_REQ", UblkConstants.IoFetchRequest),
        ("UBLK_IO_COMMIT_AND_FETCH_REQ", UblkConstants.IoCommitAndFetchRequest),
        ("UBLK_IO_NEED_GET_DATA", UblkConstants.IoNeedGetData),
        ("UBLK_IO_OP_READ", UblkConstants.IoOpRead),
        ("UBLK_IO_OP_WRITE", UblkConstants.IoOpWrite),
        ("UBLK_IO_OP_FLUSH", UblkConstants.IoOpFlush),
        ("UBLK_IO_OP_DISCARD", UblkConstants.IoOpDiscard),
        ("UBLK_IO_OP_WRITE_SAME", UblkConstants.IoOpWriteSame),
        ("UBLK_IO_OP_WRITE_ZEROES", UblkConstants.IoOpWriteZeroes),
        ("UBLK_IO_F_FUA", UblkConstants.IoFlagFua),
        ("UBLK_IO_F_NOUNMAP", UblkConstants.IoFlagNoUnmap),
        ("UBLK_PARAM_TYPE_BASIC", UblkConstants.ParameterTypeBasic),
        ("UBLK_PARAM_TYPE_DISCARD", UblkConstants.ParameterTypeDiscard),
        ("UBLK_ATTR_READ_ONLY", UblkConstants.AttributeReadOnly),
        ("UBLK_ATTR_ROTATIONAL", UblkConstants.AttributeRotational),
        ("UBLK_ATTR_VOLATILE_CACHE", UblkConstants.AttributeVolatileCache),
        ("UBLK_ATTR_FUA", UblkConstants.AttributeFua),
        ("UBLK_MAX_QUEUE_DEPTH", UblkConstants.MaxQueueDepth),
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
        ("sizeof(((struct tcmu_cmd_entry *)0)->rsp.sense_buffer)", TcmuConstants.SenseBufferSize),
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

    private static readonly Lazy<IReadOnlyDictionary<string, long>> s_kernel = new(CompileAndRun);

    public static TheoryData<string> Structs() => new(s_structs.Select(s => s.C));

    public static TheoryData<string> Constants() => new(s_constants.Select(c => c.C));

    public static TheoryData<string> Opcodes() => new(Enum.GetNames<FuseOpcode>());

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
        var ours = s_constants.Single(c => c.C == name).Ours;
        Assert.Equal(s_kernel.Value[name], ours);
    }

    [Theory]
    [MemberData(nameof(Opcodes))]
    public void FuseOpcodeMatchesTheKernelEnum(string name)
    {
        var cName = CName(Enum.Parse<FuseOpcode>(name));
        if (name == nameof(FuseOpcode.Statx) && !s_kernel.Value.ContainsKey(cName))
        {
            // FUSE_STATX came with 7.39: only an older header may lack it (a kernel that sends it gets ENOSYS).
            Assert.True(s_kernel.Value["FUSE_KERNEL_MINOR_VERSION"] < 39, "a 7.39+ header without FUSE_STATX");
            Assert.Equal(52, (long)FuseOpcode.Statx);
            return;
        }

        Assert.True(s_kernel.Value.ContainsKey(cName), $"{cName} is not in the kernel header");
        Assert.Equal(s_kernel.Value[cName], (long)Enum.Parse<FuseOpcode>(name));
    }

    /// <summary>The C enumerator: FUSE_ and the name in capitals, with underscores in the three names that have them.</summary>
    private static string CName(FuseOpcode opcode) => opcode switch
    {
        FuseOpcode.NotifyReply => "FUSE_NOTIFY_REPLY",
        FuseOpcode.BatchForget => "FUSE_BATCH_FORGET",
        FuseOpcode.CopyFileRange => "FUSE_COPY_FILE_RANGE",
        _ => "FUSE_" + opcode.ToString().ToUpperInvariant(),
    };

    private static IReadOnlyDictionary<string, long> CompileAndRun() => KernelHeaderProbe.Evaluate(
        ["errno.h", "fcntl.h", "sys/mount.h", "sys/syscall.h", "linux/fuse.h", "linux/nbd.h", "linux/loop.h", "linux/falloc.h", "linux/target_core_user.h",
            "linux/ioctl.h", "linux/io_uring.h", "linux/ublk_cmd.h"],
        s_structs.SelectMany(s => KernelHeaderProbe.Layout(s.C, s.Fields))
            .Concat(s_constants.Select(c => c.C))
            // FUSE_STATX is printed only where the header has it (7.39 and later).
            .Concat(Enum.GetValues<FuseOpcode>().Select(CName).Where(n => n != "FUSE_STATX")));
}
