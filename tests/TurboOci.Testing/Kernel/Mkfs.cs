namespace TurboOci.Testing;

/// <summary>Makes file systems with the real e2fsprogs tools, as references and scratch space.</summary>
public static class Mkfs
{
    /// <summary>
    /// Creates a sparse file of <paramref name="sizeBytes"/> and formats it ext4 with mke2fs.
    /// <paramref name="extraOptions"/> are extra mke2fs arguments separated by spaces (e.g. "-b 4096 -O ^has_journal").
    /// </summary>
    public static void Ext4(string imagePath, long sizeBytes, string? extraOptions = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sizeBytes, 1L << 20);
        using (var file = new FileStream(imagePath, FileMode.Create, FileAccess.Write))
        {
            file.SetLength(sizeBytes);
        }

        List<string> args = ["-q", "-F", "-t", "ext4"];
        if (!string.IsNullOrWhiteSpace(extraOptions))
        {
            args.AddRange(extraOptions.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        args.Add(imagePath);
        Tool.RunChecked("mke2fs", args);
    }
}
