using System.Collections.Immutable;
using Chord.Dht.Wire;

namespace Chord.Interfaces;

/// <summary>
/// A value stored on the ring, as Orleans carries it between silos and clients: the msgpack encoding of the wire
/// value model (<see cref="MsgValue"/>), so what a grain stores is exactly what a py2p node reads. Converts to and
/// from string, long, double, bool, byte[], lists and maps, and any type MessagePack-CSharp can serialize.
/// </summary>
[GenerateSerializer, Immutable, Alias("chord.value")]
public sealed class ChordValue : IEquatable<ChordValue>
{
    [Id(0)]
    private readonly byte[] _packed;

    [NonSerialized]
    private MsgValue? _value;

    private ChordValue(byte[] packed, MsgValue? value)
    {
        _packed = packed;
        _value = value;
    }

    /// <summary>The value in the wire model.</summary>
    public MsgValue Value => _value ??= MsgPack.Deserialize(_packed);

    /// <summary>The msgpack bytes of the value, as py2p stores them.</summary>
    public ReadOnlyMemory<byte> Packed => _packed;

    /// <summary>What kind of value this is.</summary>
    public MsgKind Kind => Value.Kind;

    /// <summary>Wraps a wire value. A nil value is refused: a key without a value is a null <see cref="ChordValue"/>.</summary>
    public static ChordValue From(MsgValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.IsNil)
        {
            throw new ArgumentException("A ChordValue cannot be nil: nil means 'no value' on the wire; use null for a missing value.", nameof(value));
        }

        return new ChordValue(MsgPack.Serialize(value), value);
    }

    /// <summary>Wraps a wire value; null for nil.</summary>
    public static ChordValue? FromNullable(MsgValue? value) => value is null || value.IsNil ? null : From(value);

    /// <summary>Decodes msgpack bytes (one value); throws <see cref="MsgFormatException"/> when they are not one.</summary>
    public static ChordValue FromPacked(ReadOnlySpan<byte> packed) => From(MsgPack.Deserialize(packed.ToArray()));

    /// <summary>A str value.</summary>
    public static ChordValue From(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return From(MsgValue.Str(value));
    }

    /// <summary>An int value.</summary>
    public static ChordValue From(long value) => From(MsgValue.From(value));

    /// <summary>A float value.</summary>
    public static ChordValue From(double value) => From(MsgValue.From(value));

    /// <summary>A bool value.</summary>
    public static ChordValue From(bool value) => From(MsgValue.From(value));

    /// <summary>A bin value.</summary>
    public static ChordValue From(byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return From(MsgValue.Bin(value));
    }

    /// <summary>An array value.</summary>
    public static ChordValue FromList(IEnumerable<ChordValue> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return From(MsgValue.Array(items.Select(i => i.Value)));
    }

    /// <summary>A map value with str keys.</summary>
    public static ChordValue FromMap(IEnumerable<KeyValuePair<string, ChordValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return From(MsgValue.Map(entries.Select(e => new KeyValuePair<MsgValue, MsgValue>(MsgValue.Str(e.Key), e.Value.Value))));
    }

    /// <summary>Any .NET value, converted by MessagePack-CSharp (objects become maps with str keys).</summary>
    public static ChordValue FromObject<T>(T value) => From(MsgValueConverter.From(value));

    /// <summary>Parses JSON (a <c>{"$bin": base64}</c> object is bytes); throws <see cref="System.Text.Json.JsonException"/> on bad JSON and <see cref="ArgumentException"/> on null.</summary>
    public static ChordValue FromJson(string json) => From(MsgValueJson.Parse(json));

    /// <summary>The value as JSON (bytes as <c>{"$bin": base64}</c>).</summary>
    public string ToJson() => MsgValueJson.ToJson(Value);

    /// <summary>The str value; throws <see cref="InvalidOperationException"/> for another kind.</summary>
    public string AsString() => Value.AsString();

    /// <summary>The int value; throws for another kind, or one outside long's range.</summary>
    public long AsInt64() => Value.AsInt64();

    /// <summary>The float value (an int converts); throws for another kind.</summary>
    public double AsDouble() => Value.Kind == MsgKind.Int ? (double)Value.AsInteger() : Value.AsDouble();

    /// <summary>The bool value; throws for another kind.</summary>
    public bool AsBoolean() => Value.AsBool();

    /// <summary>The bin (or ext) value's bytes; throws for another kind.</summary>
    public byte[] AsBytes() => Value.AsBytes().ToArray();

    /// <summary>The array's items; throws for another kind.</summary>
    public IReadOnlyList<ChordValue?> AsList() => [.. Value.AsArray().Select(FromNullable)];

    /// <summary>The map's entries by their keys' text (str keys as they are, others as JSON); throws for another kind.</summary>
    public IReadOnlyDictionary<string, ChordValue?> AsMap() =>
        Value.AsMap().ToImmutableDictionary(e => e.Key.Kind == MsgKind.Str ? e.Key.AsString() : MsgValueJson.ToJson(e.Key), e => FromNullable(e.Value), StringComparer.Ordinal);

    /// <summary>The value as <typeparamref name="T"/>, through MessagePack-CSharp.</summary>
    public T As<T>() => MsgValueConverter.To<T>(Value);

    /// <summary>A str value.</summary>
    public static implicit operator ChordValue(string value) => From(value);

    /// <summary>An int value.</summary>
    public static implicit operator ChordValue(long value) => From(value);

    /// <summary>A float value.</summary>
    public static implicit operator ChordValue(double value) => From(value);

    /// <summary>A bool value.</summary>
    public static implicit operator ChordValue(bool value) => From(value);

    /// <summary>A bin value.</summary>
    public static implicit operator ChordValue(byte[] value) => From(value);

    /// <inheritdoc />
    public bool Equals(ChordValue? other) => other is not null && _packed.AsSpan().SequenceEqual(other._packed);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ChordValue other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_packed);
        return hash.ToHashCode();
    }

    /// <summary>Equality by value.</summary>
    public static bool operator ==(ChordValue? left, ChordValue? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Inequality by value.</summary>
    public static bool operator !=(ChordValue? left, ChordValue? right) => !(left == right);

    /// <summary>A str value as it is; any other value as JSON.</summary>
    public override string ToString() => Value.Kind == MsgKind.Str ? Value.AsString() : ToJson();
}
