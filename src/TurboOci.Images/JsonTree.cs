using System.Text.Json;
using TurboOci.Storage;

namespace TurboOci.Images;

/// <summary>
/// A parsed JSON value that remembers where it stood in the file, so that a config error can name the
/// key's JSON pointer and byte offset. overlaybd looks keys up by exact, case-sensitive pointer and
/// aborts on a wrong type; we refuse such input with a clear message instead.
/// </summary>
internal sealed class JsonNodeAt
{
    private JsonNodeAt(JsonValueKind kind, long offset, string pointer)
    {
        Kind = kind;
        Offset = offset;
        Pointer = pointer;
    }

    public JsonValueKind Kind { get; }

    public long Offset { get; }

    public string Pointer { get; }

    public string? String { get; private set; }

    public decimal? Number { get; private set; }

    public bool Boolean { get; private set; }

    /// <summary>Object members in document order (duplicates keep the last, as rapidjson's lookup finds the first: we refuse duplicates).</summary>
    public List<KeyValuePair<string, JsonNodeAt>> Members { get; } = [];

    public List<JsonNodeAt> Items { get; } = [];

    /// <summary>The most nesting a config may have; deeper input is refused before it can exhaust the stack.</summary>
    private const int MaxDepth = 32;

    public static JsonNodeAt Parse(ReadOnlySpan<byte> utf8, string format)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = MaxDepth });
        try
        {
            if (!reader.Read())
            {
                TurboOciFormatException.Throw(format, "/", 0, "empty document");
            }

            var root = ReadValue(ref reader, "", format);
            if (reader.Read())
            {
                TurboOciFormatException.Throw(format, "/", reader.TokenStartIndex, "data after the end of the JSON document");
            }

            return root;
        }
        catch (JsonException e)
        {
            throw new TurboOciFormatException(format, "/", e.BytePositionInLine ?? 0, $"not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }

    private static JsonNodeAt ReadValue(ref Utf8JsonReader reader, string pointer, string format)
    {
        var node = new JsonNodeAt(reader.TokenType switch
        {
            JsonTokenType.StartObject => JsonValueKind.Object,
            JsonTokenType.StartArray => JsonValueKind.Array,
            JsonTokenType.String => JsonValueKind.String,
            JsonTokenType.Number => JsonValueKind.Number,
            JsonTokenType.True => JsonValueKind.True,
            JsonTokenType.False => JsonValueKind.False,
            _ => JsonValueKind.Null,
        }, reader.TokenStartIndex, pointer.Length == 0 ? "/" : pointer);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var at = reader.TokenStartIndex;
                    var name = ReadString(ref reader, pointer, format);
                    if (node.Members.Any(m => m.Key == name))
                    {
                        TurboOciFormatException.Throw(format, $"{pointer}/{name}", at, "key appears twice");
                    }

                    reader.Read();
                    node.Members.Add(new(name, ReadValue(ref reader, $"{pointer}/{name}", format)));
                }

                break;
            case JsonTokenType.StartArray:
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    node.Items.Add(ReadValue(ref reader, $"{pointer}/{node.Items.Count}", format));
                }

                break;
            case JsonTokenType.String:
                node.String = ReadString(ref reader, pointer, format);
                break;
            case JsonTokenType.Number:
                if (!reader.TryGetDecimal(out var number))
                {
                    TurboOciFormatException.Throw(format, pointer, reader.TokenStartIndex, "number out of range");
                }

                node.Number = number;
                break;
            case JsonTokenType.True:
            case JsonTokenType.False:
                node.Boolean = reader.TokenType == JsonTokenType.True;
                break;
        }

        return node;
    }

    /// <summary>Reads a string token; invalid UTF-8 or a lone surrogate escape is bad input, not a crash.</summary>
    private static string ReadString(ref Utf8JsonReader reader, string pointer, string format)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new TurboOciFormatException(format, pointer.Length == 0 ? "/" : pointer, reader.TokenStartIndex, $"a string is not valid UTF-8 or UTF-16: {e.Message}", e);
        }
    }

    public JsonNodeAt? this[string key] => Members.FirstOrDefault(m => m.Key == key).Value;

    public string GetString(string key, string format, string fallback = "")
    {
        var value = this[key];
        if (value is null)
        {
            return fallback;
        }

        if (value.Kind != JsonValueKind.String)
        {
            TurboOciFormatException.Throw(format, value.Pointer, value.Offset, $"expected a string, found {Describe(value.Kind)}");
        }

        return value.String!;
    }

    public bool GetBool(string key, string format, bool fallback = false)
    {
        var value = this[key];
        if (value is null)
        {
            return fallback;
        }

        if (value.Kind is not (JsonValueKind.True or JsonValueKind.False))
        {
            TurboOciFormatException.Throw(format, value.Pointer, value.Offset, $"expected true or false, found {Describe(value.Kind)}");
        }

        return value.Boolean;
    }

    public long GetInteger(string key, string format, long fallback, long min, long max)
    {
        var value = this[key];
        if (value is null)
        {
            return fallback;
        }

        var n = value.Number ?? 0.5m;
        if (value.Kind != JsonValueKind.Number || n != decimal.Truncate(n))
        {
            TurboOciFormatException.Throw(format, value.Pointer, value.Offset, $"expected an integer, found {Describe(value.Kind)}");
        }

        if (n < min || n > max)
        {
            TurboOciFormatException.Throw(format, value.Pointer, value.Offset, $"{n} is outside [{min}, {max}]");
        }

        return (long)n;
    }

    public JsonNodeAt? GetObject(string key, string format) => GetOf(key, format, JsonValueKind.Object, "an object");

    public JsonNodeAt? GetArray(string key, string format) => GetOf(key, format, JsonValueKind.Array, "an array");

    private JsonNodeAt? GetOf(string key, string format, JsonValueKind kind, string what)
    {
        var value = this[key];
        if (value is not null && value.Kind != kind)
        {
            TurboOciFormatException.Throw(format, value.Pointer, value.Offset, $"expected {what}, found {Describe(value.Kind)}");
        }

        return value;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
