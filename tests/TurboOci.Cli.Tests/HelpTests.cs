using System.Diagnostics;
using TurboOci.Testing;

namespace TurboOci.Cli.Tests;

/// <summary>Runs the real turbooci binary the way a user does.</summary>
public sealed class HelpTests
{
    [Fact]
    public void TopLevelHelpListsVerbsAndExitsZero()
    {
        var (code, stdout, _) = CliRunner.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage: turbooci", stdout);
        Assert.Contains("info", stdout);
    }

    [Fact]
    public void GroupHelpListsTheGroupsVerbs()
    {
        var (code, stdout, _) = CliRunner.Run("zfile", "--help");
        Assert.Equal(0, code);
        Assert.Contains("zfile compress", stdout);
        Assert.Contains("zfile verify", stdout);
        var (bare, _, _) = CliRunner.Run("zfile");
        Assert.Equal(ExitCodes.Usage, bare);
    }

    [Fact]
    public void VerbHelpNamesTheVerb()
    {
        var (code, stdout, _) = CliRunner.Run("gzindex", "build", "--help");
        Assert.Equal(0, code);
        Assert.Contains("turbooci gzindex build", stdout);
        Assert.Contains("--span", stdout);
    }

    [Fact]
    public void NoArgumentsIsAUsageError()
    {
        var (code, stdout, _) = CliRunner.Run();
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("Usage", stdout);
    }

    [Fact]
    public void UnknownVerbIsAUsageErrorOnStderr()
    {
        var (code, _, stderr) = CliRunner.Run("no-such-verb");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("no-such-verb", stderr);
    }

    [Fact]
    public void InfoFindsTheToolsTheSuiteInstalled()
    {
        var (code, stdout, _) = CliRunner.Run("info");
        Assert.Equal(0, code);
        Assert.Matches(@"e2fsck\s+/", stdout);
    }
}

/// <summary>Starts turbooci.dll from this test's output folder and captures what it prints.</summary>
public static class CliRunner
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "turbooci.dll"));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.WorkingDirectory = RepoPaths.Root;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"turbooci {string.Join(' ', args)} did not finish in 5 minutes");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
