using System.Text.Json;
using System.Text.Json.Nodes;

namespace Chord.Dht.Wire;

/// <summary>
/// Converts between <see cref="MsgValue"/> and JSON for people and HTTP clients. JSON has no bytes type, so a bin
/// is written as <c>{"$bin": "base64"}</c> (and read back from that form); everything else maps directly.
/// </summary>
public static class MsgValueJson
{
    private const string BinMarker = "$bin";

    /// <summary>The JSON text of a value.</summary>
    public static string ToJson(MsgValue value) => ToNode(value)?.ToJsonString() ?? "null";

    /// <summary>The JSON form of a value.</summary>
    public static JsonNode? ToNode(MsgValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        switch (value.Kind)
        {
            case MsgKind.Nil:
                return null;
            case MsgKind.Bool:
                return JsonValue.Create(value.AsBool());
            case MsgKind.Int:
                var integer = value.AsInteger();
                return integer < 0 ? JsonValue.Create((long)integer) : JsonValue.Create((ulong)integer);
            case MsgKind.Float:
                return JsonValue.Create(value.AsDouble());
            case MsgKind.Str:
                return JsonValue.Create(value.AsString());
            case MsgKind.Bin:
                return new JsonObject { [BinMarker] = Convert.ToBase64String(value.AsBytes().Span) };
            case MsgKind.Ext:
                return new JsonObject { ["$ext"] = (int)value.ExtTypeCode, ["data"] = Convert.ToBase64String(value.AsBytes().Span) };
            case MsgKind.Array:
                return new JsonArray([.. value.AsArray().Select(ToNode)]);
            case MsgKind.Map:
                var result = new JsonObject();
                foreach (var (key, entry) in value.AsMap())
                {
                    var name = key.Kind == MsgKind.Str ? key.AsString() : key.ToString();
                    result[name] = ToNode(entry);
                }

                return result;
            default:
                throw new ArgumentOutOfRangeException(nameof(value), value.Kind, "Unknown msgpack kind.");
        }
    }

    /// <summary>Parses JSON text; throws <see cref="JsonException"/> with the position of the error.</summary>
    public static MsgValue Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return FromNode(JsonNode.Parse(json));
    }

    /// <summary>The msgpack form of a JSON value: integers as int, other numbers as float64, objects as maps with str keys.</summary>
    public static MsgValue FromNode(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return MsgValue.Nil;
            case JsonArray array:
                return MsgValue.Array(array.Select(FromNode));
            case JsonObject obj when obj.Count == 1 && obj[BinMarker] is JsonValue bin && bin.TryGetValue<string>(out var base64):
                return MsgValue.Bin(Convert.FromBase64String(base64));
            case JsonObject obj:
                return MsgValue.Map(obj.Select(p => new KeyValuePair<MsgValue, MsgValue>(MsgValue.Str(p.Key), FromNode(p.Value))));
            case JsonValue value:
                return value.GetValueKind() switch
                {
                    JsonValueKind.String => MsgValue.Str(value.GetValue<string>()),
                    JsonValueKind.True => MsgValue.True,
                    JsonValueKind.False => MsgValue.False,
                    JsonValueKind.Number when value.TryGetValue<long>(out var l) => MsgValue.From(l),
                    JsonValueKind.Number when value.TryGetValue<ulong>(out var u) => MsgValue.From(u),
                    JsonValueKind.Number => MsgValue.From(value.GetValue<double>()),
                    _ => MsgValue.Nil,
                };
            default:
                throw new JsonException($"Unsupported JSON node {node.GetType().Name}.");
        }
    }
}
