namespace TurboOci.Testing;

/// <summary>What `e2fsck -fn` said about an image. Exit code 0 means no problem at all.</summary>
public sealed record E2fsckResult(int ExitCode, string Output)
{
    /// <summary>True when e2fsck found nothing to fix.</summary>
    public bool Clean => ExitCode == 0;

    public override string ToString() => $"e2fsck exit {ExitCode}:\n{Output}";
}

/// <summary>Checks ext4 images with the real e2fsck, never changing them.</summary>
public static class E2fsck
{
    /// <summary>Runs a forced, read-only check (`e2fsck -fn`) of <paramref name="imagePath"/>.</summary>
    public static E2fsckResult Check(string imagePath)
    {
        var result = Tool.Run("e2fsck", "-fn", imagePath);
        return new E2fsckResult(result.ExitCode, result.Output);
    }
}
