using System.Security.Cryptography;
using TurboOci.Testing.Vm;

namespace TurboOci.Testing.Tests;

/// <summary>
/// Boots the kernel test VM once (tools/vm/run: Debian's bookworm-backports 6.12 kernel under qemu) and
/// runs in it everything the TCMU, NBD and ublk tests rely on: the modules, the device nodes, configfs,
/// a TCMU user backstore made and removed by the guest agent (.NET in the guest), and NBD end to end,
/// first with our own NBD server (TurboOci.Frontends, run by the guest agent) and then with a reference
/// server (nbdkit's RAM disk): the kernel's client attached by nbd-client, ext4 made, written, remounted,
/// read back and checked by e2fsck. Each fact asserts one part of the same boot.
/// </summary>
public sealed class VmHarnessTests(VmHarnessTests.GuestBoot boot) : IClassFixture<VmHarnessTests.GuestBoot>
{
    /// <summary>The script ends with this code, to show that the script's own exit code comes back.</summary>
    private const int ScriptExitCode = 3;

    [Fact]
    public void The_scripts_exit_code_stdout_and_stderr_come_back_separately_through_the_share()
    {
        Assert.True(boot.Run.ExitCode == ScriptExitCode, boot.Run.ToString());
        Assert.Contains("stderr-marker", boot.Run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("stderr-marker", boot.Run.Stdout, StringComparison.Ordinal);
        Assert.Contains("init: kernel 6.12.", boot.Run.ConsoleLog, StringComparison.Ordinal);
        Assert.Contains($"script exit code {ScriptExitCode}", boot.Run.ConsoleLog, StringComparison.Ordinal);
    }

    [Fact]
    public void The_guest_runs_the_backports_6_12_kernel_with_the_tcmu_nbd_and_ublk_modules_loaded()
    {
        Assert.StartsWith("6.12.", boot.Value("uname"), StringComparison.Ordinal);
        var modules = boot.Value("modules").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        foreach (var module in new[] { "configfs", "uio", "target_core_mod", "target_core_user", "tcm_loop", "sd_mod", "nbd", "ublk_drv", "loop", "ext4", "9p", "overlay" })
        {
            Assert.True(modules.Contains(module), $"{module} not in /proc/modules: {boot.Value("modules")}");
        }
    }

    [Fact]
    public void Nbd_and_ublk_device_nodes_and_the_configfs_target_tree_exist()
    {
        Assert.Equal("block", boot.Value("nbd0"));
        Assert.Equal("char", boot.Value("ublk-control"));
        Assert.Contains("core", boot.Value("configfs").Split(' '));
    }

    [Fact]
    public void Dotnet_from_the_host_runs_in_the_guest()
    {
        var hostVersion = Tool.RunChecked("dotnet", "--version").Stdout.Trim();
        Assert.Equal(hostVersion, boot.Value("dotnet-version"));
    }

    [Fact]
    public void The_guest_agent_creates_enables_and_removes_a_tcmu_user_backstore()
    {
        var agent = boot.Agent("tcmu-backstore", "agent-tcmu-exit");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[] { "configfs-target-core", "tcmu-enable", "tcmu-uio-appears", "tcmu-uio-open", "tcmu-uio-map", "tcmu-info", "tcmu-teardown" },
            agent.Passed);
    }

    [Fact]
    public void Our_nbd_server_in_the_guest_serves_the_kernel_client_an_ext4_file_system_that_e2fsck_finds_clean()
    {
        var agent = boot.Agent("nbd-ext4", "agent-nbd-exit");
        Assert.True(agent.AllPassed, agent.ToString());
        Assert.Equal(
            new[]
            {
                "nbd-attach", "nbd-size", "nbd-mkfs", "nbd-mount-rw", "nbd-umount-rw", "nbd-mount-ro", "nbd-payload",
                "nbd-umount-ro", "nbd-e2fsck", "nbd-detach", "nbd-source-has-ext4", "nbd-no-protocol-errors",
            },
            agent.Passed);
    }

    [Fact]
    public void A_real_nbd_server_and_the_kernel_client_carry_an_ext4_file_system_whose_data_reads_back()
    {
        Assert.True(boot.Run.Stdout.Contains("nbd-fsck=", StringComparison.Ordinal), boot.Run.ToString());
        Assert.Equal((64L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), boot.Value("nbd-size"));
        Assert.Equal(boot.PayloadSha256, boot.Value("nbd-payload-sha256"));
        Assert.Equal("clean", boot.Value("nbd-fsck"));
        Assert.Equal("0", boot.Value("nbd-detached-size"));
    }

    [Fact]
    public void A_guest_that_outlives_its_timeout_is_killed_and_reported_as_exit_124()
    {
        // Five seconds is not even enough to boot under TCG: qemu is killed, and the run says so (GuestVm
        // itself gives up a minute after the limit, so a qemu that survived its kill would fail the test).
        var run = GuestVm.Run("sleep 1000\n", TimeSpan.FromSeconds(5));
        Assert.True(run.ExitCode == 124, run.ToString());
        Assert.Contains("did not finish within 5 s", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The one boot all facts of this class share; its script is below.</summary>
    public sealed class GuestBoot : IDisposable
    {
        private const string Script = """
            # One boot, several independent checks; each prints key=value lines the host asserts on.
            payload="$1"
            agent="$2"
            echo "uname=$(uname -r)"
            echo "modules=$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
            [ -b /dev/nbd0 ] && echo "nbd0=block"
            [ -c /dev/ublk-control ] && echo "ublk-control=char"
            echo "configfs=$(ls /sys/kernel/config/target | tr '\n' ' ')"
            echo "time-checks=$(cut -d' ' -f1 /proc/uptime)"
            echo "dotnet-version=$(dotnet --version 2>&1)"
            echo "time-dotnet-version=$(cut -d' ' -f1 /proc/uptime)"
            echo "@@tcmu-backstore"
            dotnet "$agent" tcmu-backstore
            echo "agent-tcmu-exit=$?"
            echo "@@end"
            echo "time-agent=$(cut -d' ' -f1 /proc/uptime)"
            echo "@@nbd-ext4"
            dotnet "$agent" nbd-ext4 /dev/nbd1 "$payload"
            echo "agent-nbd-exit=$?"
            echo "@@end"
            echo "time-agent-nbd=$(cut -d' ' -f1 /proc/uptime)"

            # NBD end to end: nbdkit's RAM disk on a Unix socket, the kernel's client, ext4.
            set -e
            nbdkit --unix /tmp/nbdkit.sock --pidfile /tmp/nbdkit.pid memory 64M
            nbd-client -unix /tmp/nbdkit.sock /dev/nbd0 -b 4096
            echo "nbd-size=$(blockdev --getsize64 /dev/nbd0)"
            mkfs.ext4 -q -F /dev/nbd0
            mkdir -p /tmp/mnt
            mount -t ext4 /dev/nbd0 /tmp/mnt
            cp "$payload" /tmp/mnt/payload.bin
            umount /tmp/mnt
            echo 3 > /proc/sys/vm/drop_caches
            mount -t ext4 -o ro /dev/nbd0 /tmp/mnt
            echo "nbd-payload-sha256=$(sha256sum < /tmp/mnt/payload.bin | cut -d' ' -f1)"
            umount /tmp/mnt
            if e2fsck -fn /dev/nbd0 > /tmp/fsck.log 2>&1; then echo "nbd-fsck=clean"; else echo "nbd-fsck=dirty"; cat /tmp/fsck.log; fi
            nbd-client -d /dev/nbd0
            echo "nbd-detached-size=$(cat /sys/block/nbd0/size)"
            kill "$(cat /tmp/nbdkit.pid)"
            echo "time-nbd=$(cut -d' ' -f1 /proc/uptime)"
            echo "stderr-marker" >&2
            exit 3
            """;

        private readonly TempDir _temp = new("turbooci-vm-test-");

        public GuestBoot()
        {
            // The payload lives in the host's /tmp, which the guest sees beneath its writable /tmp.
            var payload = _temp.File("payload.bin");
            var bytes = RandomNumberGenerator.GetBytes(3_000_000);
            File.WriteAllBytes(payload, bytes);
            PayloadSha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var scriptPath = _temp.File("checks.sh");
            File.WriteAllText(scriptPath, Script);
            Run = GuestVm.RunFile(scriptPath, [payload, GuestVm.GuestAgentPath]);
        }

        public GuestRunResult Run { get; }

        public string PayloadSha256 { get; }

        /// <summary>The value of the script's <c>key=value</c> line; fails the test with the whole run if absent.</summary>
        public string Value(string key)
        {
            var line = Run.Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(key + "=", StringComparison.Ordinal));
            Assert.True(line is not null, $"the guest printed no {key}= line\n{Run}");
            return line![(key.Length + 1)..].Trim();
        }

        /// <summary>The guest agent run of the script's section <c>@@NAME</c>, its exit code recorded under <paramref name="exitKey"/>.</summary>
        public GuestAgentResult Agent(string sectionName, string exitKey) =>
            GuestAgentResult.FromSection(Run, "@@" + sectionName, int.Parse(Value(exitKey), System.Globalization.CultureInfo.InvariantCulture));

        public void Dispose() => _temp.Dispose();
    }
}
