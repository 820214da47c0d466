using System.Diagnostics.CodeAnalysis;

namespace TurboOci.Storage;

/// <summary>The base of TurboOci's own exceptions, so the CLI can map failures to exit codes.</summary>
public class TurboOciException : Exception
{
    public TurboOciException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>
/// Untrusted bytes were not what their format allows. Says which format, which field and at which
/// absolute offset, so a user can tell a truncated download from a wrong blob from a bug.
/// </summary>
public class TurboOciFormatException : TurboOciException
{
    public TurboOciFormatException(string format, string field, long offset, string problem, Exception? inner = null)
        : base($"{format}: {field} at offset {offset}: {problem}", inner)
    {
        Format = format;
        Field = field;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The format that was being parsed, such as "ZFile" or "LSMT".</summary>
    public string Format { get; }

    /// <summary>The field or structure that was wrong, such as "trailer.index_offset".</summary>
    public string Field { get; }

    /// <summary>The absolute byte offset of that field in the file or stream.</summary>
    public long Offset { get; }

    /// <summary>What was wrong with it.</summary>
    public string Problem { get; }

    [DoesNotReturn]
    public static void Throw(string format, string field, long offset, string problem) =>
        throw new TurboOciFormatException(format, field, offset, problem);
}
