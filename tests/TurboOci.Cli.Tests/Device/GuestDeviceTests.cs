using System.Text.RegularExpressions;
using TurboOci.Testing;
using TurboOci.Testing.Vm;
using Xunit.Abstractions;

namespace TurboOci.Cli.Tests.Device;

/// <summary>
/// The device verbs with the frontends this host's kernel lacks, in the test VM (a stock 6.12 kernel with TCMU,
/// tcm_loop and ublk): the real <c>turbooci</c> binary mounts a stack through tcmu and through ublk, each showing
/// the tree GNU tar extracts; the daemon is killed with SIGKILL while a process re-reads a file through the
/// tcmu mount, the next verb restarts it, it adopts its TCMU disk, and the reader finishes with correct data and
/// no error; <c>detach --all</c> leaves no mount, SCSI backstore or ublk device.
/// </summary>
public sealed partial class GuestDeviceTests(ITestOutputHelper output)
{
    private const string Script = """
        dll="$1"; sock="$2"; config="$3"; expected="$4"; work="$5"
        tt() { dotnet "$dll" "$@" --socket "$sock"; }
        check() { if [ "$2" = 0 ]; then echo "CHECK $1 ok $3"; else echo "CHECK $1 fail $3"; fi; }
        listing() { (cd "$1" && find . -path ./lost+found -prune -o -printf '%p %y %m %U %G %l\n' | sort); }
        same_tree() { listing "$expected" > "$work/want.lst"; listing "$1" > "$work/got.lst"; diff -r --no-dereference -x lost+found "$expected" "$1" && diff "$work/want.lst" "$work/got.lst"; }
        mkdir -p "$work/tcmu" "$work/ublk"
        want=$(sha256sum < "$expected/dir/lines.txt")

        dev=$(tt mount --config "$config" "$work/tcmu" --frontend tcmu --name t); check tcmu-mount $? "$dev"
        case "$dev" in /dev/sd*) check tcmu-scsi-disk 0 "$dev";; *) check tcmu-scsi-disk 1 "$dev";; esac
        timeout=$(cat "/sys/block/${dev#/dev/}/device/timeout"); check tcmu-disk-timeout $([ "$timeout" = 180 ]; echo $?) "sd timeout $timeout s"
        same_tree "$work/tcmu"; check tcmu-tree $? ""

        # Re-read a file with cold caches while the daemon is killed and restarted by the next verb.
        ( for i in $(seq 15); do echo 3 > /proc/sys/vm/drop_caches; sha256sum < "$work/tcmu/dir/lines.txt"; done > "$work/sums" 2> "$work/sums.err"; echo $? > "$work/loop.rc" ) &
        reader=$!
        sleep 1
        old=$(cat "$(dirname "$sock")/serve.pid"); kill -9 "$old"; check tcmu-sigkill $? "pid $old"
        sleep 1
        tt list; check tcmu-restart $? ""
        wait "$reader"
        bad=$(grep -cv "^$want\$" "$work/sums"); lines=$(wc -l < "$work/sums")
        check tcmu-reader-data $([ "$lines" = 15 ] && [ "$bad" = 0 ]; echo $?) "$lines reads, $bad wrong"
        check tcmu-reader-no-error $([ "$(cat "$work/loop.rc")" = 0 ] && [ ! -s "$work/sums.err" ]; echo $?) "$(cat "$work/sums.err")"
        check tcmu-same-disk $([ "$(findmnt -n -o SOURCE "$work/tcmu")" = "$dev" ]; echo $?) "$(findmnt -n -o SOURCE "$work/tcmu")"
        grep -q "restored t" "$(dirname "$sock")/serve.log"; check tcmu-restored $? ""

        udev=$(tt mount --config "$config" "$work/ublk" --frontend ublk --name u); check ublk-mount $? "$udev"
        case "$udev" in /dev/ublkb*) check ublk-block-device 0 "$udev";; *) check ublk-block-device 1 "$udev";; esac
        same_tree "$work/ublk"; check ublk-tree $? ""

        tt detach --all; check detach-all $? ""
        sleep 1
        check no-mounts $(grep -q " $work/" /proc/mounts; [ $? = 1 ]; echo $?) "$(grep " $work/" /proc/mounts)"
        check no-ublk $([ ! -e "$udev" ]; echo $?) ""
        check no-backstore $(ls -d /sys/kernel/config/target/core/user_*/t-* >/dev/null 2>&1; [ $? != 0 ]; echo $?) ""
        kill -TERM "$(cat "$(dirname "$sock")/serve.pid")"
        for i in $(seq 100); do [ -S "$sock" ] || break; sleep 0.1; done
        check daemon-stopped $([ ! -S "$sock" ]; echo $?) ""
        sed 's/^/LOG /' "$(dirname "$sock")/serve.log"
        """;

    private static readonly string[] s_checks =
    [
        "tcmu-mount", "tcmu-scsi-disk", "tcmu-disk-timeout", "tcmu-tree", "tcmu-sigkill", "tcmu-restart", "tcmu-reader-data", "tcmu-reader-no-error",
        "tcmu-same-disk", "tcmu-restored", "ublk-mount", "ublk-block-device", "ublk-tree", "detach-all", "no-mounts", "no-ublk",
        "no-backstore", "daemon-stopped",
    ];

    [Fact]
    public void TcmuAndUblkMountsShowTheTreeAndATcmuDeviceSurvivesASigkilledDaemonWithoutAReadError()
    {
        using var session = new DaemonSession();
        var config = DeviceStacks.IndexReferenceLayer(session);
        var expected = session.Directory("expected");
        Tool.RunChecked("tar", "-xzf", DeviceStacks.ReferenceLayer, "-C", expected, "--numeric-owner", "-p");
        var script = session.File("guest.sh");
        File.WriteAllText(script, Script);

        var dll = Path.Combine(AppContext.BaseDirectory, "turbooci.dll");
        var run = GuestVm.RunFile(script, [dll, session.Paths.SocketPath, config, expected, session.Directory("guest")]);
        output.WriteLine(run.ToString());
        output.WriteLine(session.Log());
        var results = CheckLine().Matches(run.Stdout).ToDictionary(m => m.Groups[1].Value, m => (m.Groups[2].Value, m.Groups[3].Value));
        foreach (var name in s_checks)
        {
            Assert.True(results.TryGetValue(name, out var result), $"check {name} did not run:\n{run}");
            Assert.True(result.Item1 == "ok", $"check {name} failed: {result.Item2}\n{run}\n{session.Log()}");
        }
    }

    [GeneratedRegex(@"^CHECK (\S+) (ok|fail) ?(.*)$", RegexOptions.Multiline)]
    private static partial Regex CheckLine();
}
