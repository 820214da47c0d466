using System.Globalization;
using TurboOci.Frontends.Tcmu;
using TurboOci.Images;

namespace TurboOci.GuestAgent;

/// <summary>
/// <c>tcmu-scsi CONFIG</c>: our SCSI answers as sg3_utils reads them through the guest kernel's SG_IO (the real
/// initiator path): INQUIRY, READ CAPACITY(16), the block limits VPD page, REPORT SUPPORTED OPERATION CODES, and
/// the sense of a refused command: an unknown opcode, a write to the read-only disk, a read past its end.
/// </summary>
public static class TcmuScsiCheck
{
    public static async Task RunAsync(string[] args, CheckReport report)
    {
        if (args.Length != 1)
        {
            report.Fail("tcmu-usage", "tcmu-scsi CONFIG");
            return;
        }

        using var stack = ImageStack.Open(ImageConfig.Load(args[0]));
        await using var device = TcmuDevice.Attach(stack, new TcmuDeviceOptions { Name = "turbooci-sg" });
        var disk = device.DevicePath;
        var blocks = stack.Size / device.Info.BlockSize;

        Expect(report, "tcmu-sg-inquiry", 0, ["Vendor identification: TURBOOCI", "Product identification: TurboOCI disk"], "sg_inq", disk);
        Expect(report, "tcmu-sg-serial", 0, [$"Unit serial number: {device.Info.Serial}"], "sg_vpd", "--page=sn", disk);
        Expect(report, "tcmu-sg-capacity", 0,
            [$"Last LBA={blocks - 1}", $"Number of logical blocks={blocks}", $"Logical block length={device.Info.BlockSize} bytes"], "sg_readcap", "--readonly", "--long", disk);
        Expect(report, "tcmu-sg-block-limits", 0,
            [$"Maximum transfer length: {ScsiDiskInfo.MaxTransferBytes / device.Info.BlockSize} blocks"], "sg_vpd", "--page=bl", disk);
        Expect(report, "tcmu-sg-opcodes", 0, ["Read(16)", "Write same(16)", "Report supported operation codes"], "sg_opcodes", disk);
        Expect(report, "tcmu-sg-unknown-opcode", null, ["Illegal Request", "Invalid command operation code"], "sg_raw", "-R", disk, "04", "00", "00", "00", "00", "00");
        Expect(report, "tcmu-sg-write-protected", null, ["Data protect", "Write protected"],
            "sg_raw", "-R", "--send=512", "--infile=/dev/zero", disk, "2a", "00", "00", "00", "00", "00", "00", "00", "01", "00");
        var end = blocks.ToString("x16", CultureInfo.InvariantCulture);
        Expect(report, "tcmu-sg-out-of-range", null, ["Illegal Request", "Logical block address out of range"],
            ["sg_raw", "-R", "--request=512", disk, "88", "00", .. Enumerable.Range(0, 8).Select(i => end.Substring(2 * i, 2)), "00", "00", "00", "01", "00", "00"]);
        report.Check("tcmu-sg-no-medium-errors", device.MediumErrors == 0 && device.Fault is null,
            $"{device.Completed} commands answered, {device.CheckConditions} with CHECK CONDITION, {device.MediumErrors} medium errors");
    }

    private static void Expect(CheckReport report, string check, int? exitCode, string[] expected, params string[] command)
    {
        var (exit, output) = GuestProcess.Run(command[0], command[1..]);
        var missing = expected.Where(e => !output.Contains(e, StringComparison.OrdinalIgnoreCase)).ToList();
        report.Check(check, (exitCode is null ? exit != 0 : exit == exitCode) && missing.Count == 0,
            $"{string.Join(' ', command)} exited {exit}; missing: [{string.Join(", ", missing)}]; output: {output.Trim()}");
    }
}
