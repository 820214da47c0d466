using System.Security.Cryptography;

namespace TurboOci.Formats.Lsmt;

/// <summary>
/// UUID text as photon writes it (formats doc §0): the 16 bytes in storage order as upper-case hex,
/// 8-4-4-4-12, in a 37-byte NUL-terminated field. Kept as text: the runtime only compares and prints them.
/// </summary>
public static class LsmtUuid
{
    public const string Null = "00000000-0000-0000-0000-000000000000";

    /// <summary>A fresh random (version 4) UUID, as overlaybd-create makes one.</summary>
    public static string NewRandom()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        var hex = Convert.ToHexString(bytes);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }

    /// <summary>Parses user input (either case) into the on-disk upper-case form, or throws <see cref="FormatException"/>.</summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryNormalize(text, out var normalized))
        {
            throw new FormatException($"'{text}' is not a UUID (want 8-4-4-4-12 hex digits)");
        }

        return normalized;
    }

    public static bool TryNormalize(string text, out string normalized)
    {
        normalized = string.Empty;
        if (text.Length != 36)
        {
            return false;
        }

        for (var i = 0; i < 36; i++)
        {
            var c = text[i];
            var dash = i is 8 or 13 or 18 or 23;
            if (dash ? c != '-' && !char.IsAsciiHexDigit(c) : !char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        // Photon skips the four separator positions when parsing and writes '-' there when printing.
        var chars = text.ToUpperInvariant().ToCharArray();
        chars[8] = chars[13] = chars[18] = chars[23] = '-';
        normalized = new string(chars);
        return true;
    }

    public static bool IsNull(string uuid) => uuid.Length == 0 || uuid == Null;
}
