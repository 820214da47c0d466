namespace TurboOci.Cli.Tests.Device;

/// <summary>The device verbs' help, as a user first meets them.</summary>
public sealed class DeviceHelpTests
{
    [Fact]
    public void TheOverviewListsTheDeviceVerbsAndTheirHelpNamesTheirOptions()
    {
        var (code, stdout, _) = CliRunner.Run("--help");
        Assert.Equal(0, code);
        foreach (var verb in (string[])["attach", "detach", "list", "mount", "umount", "serve"])
        {
            Assert.Matches($@"(?m)^  {verb}\s+\S", stdout);
        }

        (code, stdout, _) = CliRunner.Run("attach", "--help");
        Assert.Equal(0, code);
        foreach (var option in (string[])["--config", "--image", "--frontend", "--rw", "--name", "--socket", "nbd+unix:///NAME?socket=PATH", "tcmu", "ublk"])
        {
            Assert.Contains(option, stdout, StringComparison.Ordinal);
        }

        (code, stdout, _) = CliRunner.Run("mount", "--help");
        Assert.Equal(0, code);
        Assert.Contains("DIR", stdout, StringComparison.Ordinal);
        Assert.Contains("Read-only by default", stdout, StringComparison.Ordinal);
        (code, stdout, _) = CliRunner.Run("detach", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--all", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void DetachWantsDevicesOrAllButNotBoth()
    {
        var (code, _, stderr) = CliRunner.Run("detach", "--socket", "/nonexistent/turbooci.sock");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--all", stderr, StringComparison.Ordinal);
        (code, _, stderr) = CliRunner.Run("detach", "x", "--all", "--socket", "/nonexistent/turbooci.sock");
        Assert.Equal(ExitCodes.Usage, code);
        (code, var stdout, _) = CliRunner.Run("list", "--socket", "/nonexistent/turbooci.sock");
        Assert.Equal(0, code);
        Assert.Contains("no turbooci daemon runs on /nonexistent/turbooci.sock", stdout, StringComparison.Ordinal);
    }
}
