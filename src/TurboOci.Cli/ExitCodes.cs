namespace TurboOci.Cli;

/// <summary>Process exit codes, stable so scripts can tell failures apart.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Usage = 1;
    public const int BadData = 2;
    public const int IoError = 3;
    public const int Failure = 4;
    public const int Cancelled = 130;
}
