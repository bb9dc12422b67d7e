using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// The golden vectors produced by the reference py2p 0.7.878 (Vectors/py2p-0.7.json in the test output directory),
/// loaded once, with the conversions the vector file's conventions need.
/// </summary>
internal static class WireVectors
{
    private static readonly Lazy<JsonDocument> Document = new(Load);

    /// <summary>The whole vector file.</summary>
    public static JsonElement Root => Document.Value.RootElement;

    /// <summary>One top-level section of the file.</summary>
    public static JsonElement Section(string name) => Root.GetProperty(name);

    /// <summary>Lowercase or uppercase hex to bytes.</summary>
    public static byte[] Hex(string hex) => Convert.FromHexString(hex);

    /// <summary>Bytes to lowercase hex, as the vectors write them (readable diffs in failures).</summary>
    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>A decimal integer of any size.</summary>
    public static BigInteger Int(string text) => BigInteger.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    /// <summary>The string property <paramref name="name"/> of <paramref name="element"/>.</summary>
    public static string Str(JsonElement element, string name) =>
        element.GetProperty(name).GetString() ?? throw new InvalidDataException($"Vector property '{name}' is null.");

    /// <summary>
    /// A vector value as a <see cref="MsgValue"/>: <c>{"int": "…"}</c> is an integer of any width, <c>{"bytes_hex": "…"}</c>
    /// is a bin, a JSON string is a str, a number with a fraction or exponent is a float64, other numbers are integers,
    /// arrays are arrays and other objects are maps with str keys.
    /// </summary>
    public static MsgValue ToMsgValue(JsonElement json) => json.ValueKind switch
    {
        JsonValueKind.Null => MsgValue.Nil,
        JsonValueKind.True => MsgValue.True,
        JsonValueKind.False => MsgValue.False,
        JsonValueKind.String => MsgValue.Str(json.GetString()!),
        JsonValueKind.Number => Number(json),
        JsonValueKind.Array => MsgValue.Array(json.EnumerateArray().Select(ToMsgValue).ToList()),
        JsonValueKind.Object => Object(json),
        _ => throw new InvalidDataException($"Unexpected JSON value {json.ValueKind} in the vectors."),
    };

    /// <summary>A message payload (<c>p0, p1, …</c>) from the vectors.</summary>
    public static MsgValue[] Payload(JsonElement json) => json.EnumerateArray().Select(ToMsgValue).ToArray();

    /// <summary>An integer as the narrowest <see cref="MsgValue"/> constructor takes it.</summary>
    public static MsgValue Integer(BigInteger value) =>
        value >= long.MinValue && value <= long.MaxValue ? MsgValue.From((long)value) : MsgValue.From((ulong)value);

    private static MsgValue Number(JsonElement json)
    {
        var raw = json.GetRawText();
        return raw.AsSpan().IndexOfAny('.', 'e', 'E') >= 0 ? MsgValue.From(json.GetDouble()) : Integer(Int(raw));
    }

    private static MsgValue Object(JsonElement json)
    {
        if (IsMarker(json, "int", out var digits))
        {
            return Integer(Int(digits));
        }

        if (IsMarker(json, "bytes_hex", out var hex))
        {
            return MsgValue.Bin(Hex(hex));
        }

        return MsgValue.Map(json.EnumerateObject()
            .Select(p => new KeyValuePair<MsgValue, MsgValue>(MsgValue.Str(p.Name), ToMsgValue(p.Value)))
            .ToList());
    }

    private static bool IsMarker(JsonElement json, string name, out string text)
    {
        text = string.Empty;
        using var properties = json.EnumerateObject();
        if (!properties.MoveNext() || properties.Current.Name != name || properties.Current.Value.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        text = properties.Current.Value.GetString()!;
        return !properties.MoveNext();
    }

    private static JsonDocument Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Vectors", "py2p-0.7.json");
        return JsonDocument.Parse(File.ReadAllBytes(path));
    }
}
