using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace TurboOci.Frontends.Tcmu;

/// <summary>
/// The configfs objects of one TCMU device, named after the device: the user backstore
/// <c>target/core/user_N/NAME</c> (its uio device is <c>tcm-user/N/NAME/turbooci/NAME</c>) and a tcm_loop target
/// <c>target/loopback/naa.WWN/tpgt_1</c> with a nexus and LUN 0 linked to the backstore. The WWNs derive from the
/// name, so a restarted handler finds the same objects.
/// </summary>
internal sealed partial class TcmuConfigFs
{
    public const string HandlerName = "turbooci";

    private TcmuConfigFs(string root, string name, string hba)
    {
        Name = name;
        Root = root;
        Hba = hba;
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes("turbooci-tcmu:" + name));
        var hex = Convert.ToHexStringLower(digest);
        // NAA 5 with LIO's IEEE company id 00-14-05, as targetcli makes them, then 36 bits of the name's hash.
        TargetWwn = "naa.5001405" + hex[..9];
        InitiatorWwn = "naa.5001405" + hex[9..18];
    }

    public string Name { get; }

    public string Root { get; }

    /// <summary>target/core/user_N.</summary>
    public string Hba { get; }

    public string Backstore => Path.Combine(Hba, Name);

    public string TargetWwn { get; }

    public string InitiatorWwn { get; }

    public string Target => Path.Combine(Root, "target", "loopback", TargetWwn);

    public string Tpg => Path.Combine(Target, "tpgt_1");

    public string Lun => Path.Combine(Tpg, "lun", "lun_0");

    public string LunLink => Path.Combine(Lun, Name);

    public string UioName => $"tcm-user/{Path.GetFileName(Hba)["user_".Length..]}/{Name}/{HandlerName}/{Name}";

    public bool BackstoreExists => Directory.Exists(Backstore);

    public bool LunLinked => File.Exists(LunLink) || Directory.Exists(LunLink);

    /// <summary>The objects of <paramref name="name"/>: the existing backstore's HBA if one has it, else the first free user_N.</summary>
    public static TcmuConfigFs For(string configFsRoot, string name)
    {
        if (!NamePattern().IsMatch(name) || name is "." or "..")
        {
            throw new ArgumentException($"a TCMU device name is 1 to 64 letters, digits, '-', '_' or '.': {name}", nameof(name));
        }

        var core = Path.Combine(configFsRoot, "target", "core");
        if (!Directory.Exists(core))
        {
            throw new IOException($"{core} does not exist: load target_core_user and tcm_loop and mount configfs");
        }

        var existing = Directory.EnumerateDirectories(core, "user_*").FirstOrDefault(hba => Directory.Exists(Path.Combine(hba, name)));
        var free = existing ?? Enumerable.Range(1, 10_000).Select(i => Path.Combine(core, $"user_{i}")).First(p => !Directory.Exists(p));
        return new TcmuConfigFs(configFsRoot, name, free);
    }

    /// <summary>Creates and enables the backstore: its size, block size and command timeout are fixed from then on.</summary>
    public void CreateBackstore(long sizeBytes, int blockSize, int commandTimeoutSeconds)
    {
        Directory.CreateDirectory(Backstore);
        // Each control option must be its own write(2): the kernel parses one option list per write.
        Write("control", $"dev_config={HandlerName}/{Name}");
        Write("control", $"dev_size={sizeBytes.ToString(CultureInfo.InvariantCulture)}");
        Write("control", $"hw_block_size={blockSize.ToString(CultureInfo.InvariantCulture)}");
        Write(Path.Combine("attrib", "cmd_time_out"), commandTimeoutSeconds.ToString(CultureInfo.InvariantCulture));
        Write("enable", "1");
    }

    /// <summary>The size and enable state the kernel reports for an existing backstore (its info text).</summary>
    public (bool Enabled, long Size) ReadBackstore()
    {
        var enabled = File.ReadAllText(Path.Combine(Backstore, "enable")).Trim() == "1";
        var match = SizePattern().Match(File.ReadAllText(Path.Combine(Backstore, "info")));
        return (enabled, match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : -1);
    }

    /// <summary>The backstore's uio device (/dev/uioN) and the size of its map0, waiting briefly for udev-less devtmpfs.</summary>
    public (string DevicePath, long MapSize) FindUio()
    {
        const string UioClass = "/sys/class/uio";
        var uio = Directory.Exists(UioClass)
            ? Directory.EnumerateDirectories(UioClass).FirstOrDefault(dir => File.ReadAllText(Path.Combine(dir, "name")).Trim() == UioName)
            : null;
        if (uio is null)
        {
            throw new IOException($"no uio device is named {UioName}: is the backstore {Backstore} enabled?");
        }

        var mapSize = Convert.ToInt64(File.ReadAllText(Path.Combine(uio, "maps", "map0", "size")).Trim(), 16);
        return ($"/dev/{Path.GetFileName(uio)}", mapSize);
    }

    /// <summary>block_dev (1: the kernel queues new commands; 0: it sends them again) and reset_ring (1: in-ring commands end BUSY, so the initiator retries them).</summary>
    public void Action(string action, int value) => Write(Path.Combine("action", action), value.ToString(CultureInfo.InvariantCulture));

    /// <summary>The tcm_loop target, its nexus and LUN 0; linking the LUN makes the kernel probe the disk through the ring.</summary>
    public void CreateLoopbackLun()
    {
        Directory.CreateDirectory(Lun);
        if (!HasNexus())
        {
            File.WriteAllText(Path.Combine(Tpg, "nexus"), InitiatorWwn);
        }

        if (!LunLinked)
        {
            File.CreateSymbolicLink(LunLink, Backstore);
        }
    }

    /// <summary>tcm_loop answers a read of the nexus attribute with ENODEV until one is set.</summary>
    private bool HasNexus()
    {
        try
        {
            return File.ReadAllText(Path.Combine(Tpg, "nexus")).Trim().Length > 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The SCSI address H:C:T:L of LUN 0 from the loopback TPG's address attribute.</summary>
    public string ScsiAddress()
    {
        var address = File.ReadAllText(Path.Combine(Tpg, "address")).Trim();
        return AddressPattern().IsMatch(address) ? address + ":0" : throw new IOException($"{Tpg}/address reads '{address}'");
    }

    /// <summary>Unlinks LUN 0 and removes the loopback target (the kernel removes the disk; the handler must still serve).</summary>
    public void RemoveLoopback()
    {
        if (LunLinked)
        {
            File.Delete(LunLink);
        }

        RemoveDirectory(Lun);
        RemoveDirectory(Tpg);
        RemoveDirectory(Target);
    }

    /// <summary>Removes the backstore and its HBA (after the handler closed the uio device).</summary>
    public void RemoveBackstore()
    {
        RemoveDirectory(Backstore);
        if (Directory.Exists(Hba) && !Directory.EnumerateDirectories(Hba).Any())
        {
            RemoveDirectory(Hba);
        }
    }

    private void Write(string attribute, string value) => File.WriteAllText(Path.Combine(Backstore, attribute), value);

    /// <summary>configfs directories are removed with rmdir(2) alone: their attribute files are not real files.</summary>
    private static void RemoveDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: false);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NamePattern();

    /// <summary>The backstore's "Size: N" in its info text, not the "SectorSize: 512" before it.</summary>
    [GeneratedRegex(@"(?<![A-Za-z])Size: (\d+)")]
    private static partial Regex SizePattern();

    [GeneratedRegex(@"^\d+:\d+:\d+$")]
    private static partial Regex AddressPattern();
}
