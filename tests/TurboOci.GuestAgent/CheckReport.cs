namespace TurboOci.GuestAgent;

/// <summary>Prints the PASS/FAIL lines that GuestVm.RunAgent parses on the host, and counts them.</summary>
public sealed class CheckReport(TextWriter output)
{
    public int Passes { get; private set; }

    public int Failures { get; private set; }

    public void Pass(string name, string detail)
    {
        Passes++;
        Write("PASS", name, detail);
    }

    public void Fail(string name, string detail)
    {
        Failures++;
        Write("FAIL", name, detail);
    }

    /// <summary>PASS when <paramref name="condition"/> holds, else FAIL; returns the condition.</summary>
    public bool Check(string name, bool condition, string detail)
    {
        if (condition)
        {
            Pass(name, detail);
        }
        else
        {
            Fail(name, detail);
        }

        return condition;
    }

    private void Write(string verdict, string name, string detail)
    {
        // Names are single words so the host can split at the first colon.
        output.WriteLine($"{verdict} {name}: {detail.ReplaceLineEndings(" ")}");
        output.Flush();
    }
}
