namespace TurboOci.GuestAgent;

/// <summary>
/// The guest agent's entry point: <c>TurboOci.GuestAgent CHECK [ARG...]</c>. Every check prints lines
/// <c>PASS name: detail</c> or <c>FAIL name: detail</c>; the exit code is 0 only when all passed.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, Func<string[], CheckReport, Task>> s_checks = new(StringComparer.Ordinal)
    {
        ["tcmu-backstore"] = (_, report) => { TcmuBackstoreCheck.Run(report); return Task.CompletedTask; },
        ["nbd-ext4"] = NbdExt4Check.RunAsync,
        ["tcmu-stack"] = TcmuStackCheck.RunAsync,
        ["tcmu-serve"] = TcmuRecoveryCheck.ServeAsync,
        ["tcmu-recovery"] = TcmuRecoveryCheck.RunAsync,
        ["tcmu-scsi"] = TcmuScsiCheck.RunAsync,
        ["ublk-stack"] = UblkStackCheck.RunAsync,
        ["nbd-stack"] = NbdStackCheck.RunAsync,
    };

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || !s_checks.TryGetValue(args[0], out var check))
        {
            await Console.Error.WriteLineAsync($"usage: TurboOci.GuestAgent {string.Join('|', s_checks.Keys)} [ARG...]");
            return 2;
        }

        var report = new CheckReport(Console.Out);
        try
        {
            await check(args[1..], report);
        }
        catch (Exception e)
        {
            // An unexpected exception is a failed check, reported like the others, not a crash without a verdict.
            report.Fail(args[0], e.ToString().ReplaceLineEndings(" | "));
        }

        return report.Failures == 0 && report.Passes > 0 ? 0 : 1;
    }
}
