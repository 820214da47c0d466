using TurboOci.Testing;

namespace TurboOci.GuestAgent;

/// <summary>Runs the guest's programs (nbd-client, mkfs.ext4, mount, e2fsck) and reports them as checks.</summary>
public static class GuestProcess
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(3);

    /// <summary>Runs a program to the end (killed after 3 minutes); returns its exit code and stdout+stderr.</summary>
    public static (int ExitCode, string Output) Run(string program, params string[] args)
    {
        var result = Tool.Run(program, args, s_timeout);
        return (result.ExitCode, result.Output);
    }

    /// <summary>Runs a program and reports a PASS or FAIL line named <paramref name="check"/>; true when it exited 0.</summary>
    public static bool RunChecked(CheckReport report, string check, string program, params string[] args)
    {
        var (exitCode, output) = Run(program, args);
        return report.Check(check, exitCode == 0, $"{program} {string.Join(' ', args)} exited {exitCode}: {output.Trim()}");
    }
}
