using System.Diagnostics;
using System.Text;

namespace TurboOci.Testing;

/// <summary>What a finished external program said: its exit code and everything it printed.</summary>
public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout and stderr together, for assertion messages.</summary>
    public string Output => Stderr.Length == 0 ? Stdout : Stdout + Stderr;
}

/// <summary>
/// Runs the real tools the tests check our output against (e2fsck, debugfs, tar, umoci...). Arguments are
/// passed as a list, never through a shell, so paths with spaces or quotes are safe. A program that
/// outlives its timeout is killed with its whole process tree so a hung tool cannot hang the test run.
/// </summary>
public static class Tool
{
    /// <summary>The default time a tool may run before it is killed.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    // Tests run as root, but a root PATH is not guaranteed in every CI shell: losetup, mke2fs, e2fsck and
    // debugfs live in the sbin folders.
    private static readonly string[] s_extraSearchFolders = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

    /// <summary>Runs a program and returns whatever it did, even a non-zero exit.</summary>
    public static ToolResult Run(string program, params string[] args) => Run(program, args, timeout: null);

    /// <summary>Runs a program with optional stdin text, working directory and timeout (default 5 min).</summary>
    public static ToolResult Run(
        string program,
        IEnumerable<string> args,
        TimeSpan? timeout = null,
        string? stdin = null,
        string? workingDirectory = null)
    {
        var stdout = new MemoryStream();
        var stdinBytes = stdin is null ? null : Encoding.UTF8.GetBytes(stdin);
        var (exitCode, stderr) = RunCore(program, args, stdout, stdinBytes is null ? null : input => input.Write(stdinBytes), timeout, workingDirectory);
        return new ToolResult(exitCode, Encoding.UTF8.GetString(stdout.GetBuffer(), 0, (int)stdout.Length), stderr);
    }

    /// <summary>Runs a program and throws, with everything it printed, unless it exits 0.</summary>
    public static ToolResult RunChecked(string program, params string[] args) => RunChecked(program, (IEnumerable<string>)args);

    /// <summary>Runs a program and throws, with everything it printed, unless it exits 0.</summary>
    public static ToolResult RunChecked(
        string program,
        IEnumerable<string> args,
        TimeSpan? timeout = null,
        string? stdin = null,
        string? workingDirectory = null)
    {
        var argList = args.ToArray();
        var result = Run(program, argList, timeout, stdin, workingDirectory);
        if (result.ExitCode != 0)
        {
            throw new ToolFailedException(program, argList, result);
        }

        return result;
    }

    /// <summary>
    /// Runs a program as a binary filter (tar, gzip, pigz): <paramref name="writeStdin"/> writes its input
    /// while its output is copied to <paramref name="stdout"/>, both streamed. Returns the exit code and
    /// stderr; <paramref name="stdout"/> is not closed.
    /// </summary>
    public static (int ExitCode, string Stderr) RunFilter(
        string program,
        IEnumerable<string> args,
        Action<Stream>? writeStdin,
        Stream stdout,
        TimeSpan? timeout = null,
        string? workingDirectory = null) =>
        RunCore(program, args, stdout, writeStdin, timeout, workingDirectory);

    /// <summary>Like <see cref="RunFilter"/> but throws unless the program exits 0.</summary>
    public static void RunFilterChecked(
        string program,
        IEnumerable<string> args,
        Action<Stream>? writeStdin,
        Stream stdout,
        TimeSpan? timeout = null,
        string? workingDirectory = null)
    {
        var argList = args.ToArray();
        var (exitCode, stderr) = RunCore(program, argList, stdout, writeStdin, timeout, workingDirectory);
        if (exitCode != 0)
        {
            throw new ToolFailedException(program, argList, new ToolResult(exitCode, "(binary stdout)", stderr));
        }
    }

    /// <summary>The full path of an installed program, found in PATH and the sbin folders.</summary>
    /// <exception cref="InvalidOperationException">The program is not installed.</exception>
    public static string Which(string program)
    {
        if (program.Contains('/'))
        {
            return File.Exists(program) ? program : throw NotInstalled(program);
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var folder in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(s_extraSearchFolders))
        {
            var candidate = System.IO.Path.Combine(folder, program);
            if (File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
            {
                return candidate;
            }
        }

        throw NotInstalled(program);
    }

    private static InvalidOperationException NotInstalled(string program) =>
        new($"{program} not installed: run tools/setup");

    private static (int ExitCode, string Stderr) RunCore(
        string program,
        IEnumerable<string> args,
        Stream stdout,
        Action<Stream>? writeStdin,
        TimeSpan? timeout,
        string? workingDirectory)
    {
        var startInfo = new ProcessStartInfo(Which(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        // Tools such as debugfs and tar print dates: fix the zone and language so parsing is stable.
        startInfo.Environment["LC_ALL"] = "C.UTF-8";
        startInfo.Environment["TZ"] = "UTC";

        using var process = new Process { StartInfo = startInfo };
        process.Start();

        // Pump all three pipes at once: a tool that fills its stderr pipe while we wait on stdout would
        // otherwise deadlock.
        var stdoutPump = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderrPump = process.StandardError.ReadToEndAsync();
        Exception? writerFailure = null;
        var stdinPump = Task.Run(() =>
        {
            try
            {
                writeStdin?.Invoke(process.StandardInput.BaseStream);
            }
            catch (IOException)
            {
                // The tool exited without reading all its input (e.g. `tar -t` on a damaged archive); its
                // exit code tells the story.
            }
            catch (Exception e)
            {
                // Our own input generator failed: kill the tool so the failure surfaces, not a timeout.
                writerFailure = e;
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            }
            finally
            {
                try
                {
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }
            }
        });

        var limit = timeout ?? DefaultTimeout;
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{program} {string.Join(' ', startInfo.ArgumentList)} did not finish within {limit} and was killed");
        }

        Task.WaitAll(stdoutPump, stderrPump, stdinPump);
        if (writerFailure is not null)
        {
            throw new InvalidOperationException($"writing the input of {program} failed", writerFailure);
        }

        return (process.ExitCode, stderrPump.Result);
    }
}

/// <summary>A tool exited non-zero; the message carries its command line and everything it printed.</summary>
public sealed class ToolFailedException(string program, IReadOnlyList<string> args, ToolResult result)
    : Exception($"{program} {string.Join(' ', args)} exited {result.ExitCode}\nstdout:\n{Truncate(result.Stdout)}\nstderr:\n{Truncate(result.Stderr)}")
{
    /// <summary>What the tool printed and returned.</summary>
    public ToolResult Result { get; } = result;

    private static string Truncate(string text) => text.Length <= 8000 ? text : text[..8000] + "\n...(truncated)";
}
