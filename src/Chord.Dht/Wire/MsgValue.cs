using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Chord.Dht.Wire;

/// <summary>
/// One msgpack value with exact type fidelity: a bin stays a bin and a str stays a str, because py2p
/// compares with Python's <c>==</c> and a bin where a str is expected silently fails to match.
/// </summary>
/// <remarks>
/// Equality is what majority voting needs: two values are equal when they have the same kind and the same
/// content. Integers compare by value whatever width carried them; floats compare by value (float32 and
/// float64 of the same number are equal, NaN equals NaN); maps compare as Python dicts do, ignoring entry
/// order. A bool is never equal to an integer and an integer never to a float — stricter than Python, so a
/// vote never merges values a .NET reader would see as different types.
/// Instances are immutable and safe to share across threads.
/// </remarks>
public sealed class MsgValue : IEquatable<MsgValue>
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The nil value.</summary>
    public static readonly MsgValue Nil = new(MsgKind.Nil, 0, 0, null);

    /// <summary>true.</summary>
    public static readonly MsgValue True = new(MsgKind.Bool, 1, 0, null);

    /// <summary>false.</summary>
    public static readonly MsgValue False = new(MsgKind.Bool, 0, 0, null);

    private static readonly MsgValue[] SmallInts = Enumerable.Range(-32, 160).Select(i => new MsgValue(MsgKind.Int, i, 0, null)).ToArray();

    private readonly Int128 _int;     // Int, Bool (0/1), Ext type code, Float: 32 or 64 (the width), Bin: 0 or a slice (BinSlice)
    private readonly double _float;
    private readonly object? _ref;    // string, byte[], MsgValue[] (an array: not a boxed ImmutableArray, 24 B less per array), map entries, ext bytes

    private MsgValue(MsgKind kind, Int128 i, double f, object? r)
    {
        Kind = kind;
        _int = i;
        _float = f;
        _ref = r;
    }

    /// <summary>The msgpack family of this value.</summary>
    public MsgKind Kind { get; }

    /// <summary>True for nil.</summary>
    public bool IsNil => Kind == MsgKind.Nil;

    /// <summary>True when this is a float that travels as float32.</summary>
    public bool IsFloat32 => Kind == MsgKind.Float && _int == 32;

    // ---- construction ----------------------------------------------------------------------------

    /// <summary>A bool.</summary>
    public static MsgValue From(bool value) => value ? True : False;

    /// <summary>A signed integer.</summary>
    public static MsgValue From(long value) =>
        value is >= -32 and < 128 ? SmallInts[value + 32] : new MsgValue(MsgKind.Int, value, 0, null);

    /// <summary>An unsigned integer (up to uint64's maximum).</summary>
    public static MsgValue From(ulong value) =>
        value < 128 ? SmallInts[(int)value + 32] : new MsgValue(MsgKind.Int, value, 0, null);

    /// <summary>A float64.</summary>
    public static MsgValue From(double value) => new(MsgKind.Float, 64, value, null);

    /// <summary>A float32; it is written as float32 on the wire.</summary>
    public static MsgValue From(float value) => new(MsgKind.Float, 32, value, null);

    /// <summary>A str. Throws <see cref="ArgumentNullException"/> for null: use <see cref="Nil"/>.</summary>
    public static MsgValue Str(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new MsgValue(MsgKind.Str, 0, 0, value);
    }

    /// <summary>A bin holding a copy of <paramref name="value"/>.</summary>
    public static MsgValue Bin(ReadOnlySpan<byte> value) => new(MsgKind.Bin, 0, 0, value.ToArray());

    /// <summary>A bin holding the ASCII bytes of <paramref name="ascii"/> (how py2p sends ids and base58 numbers).</summary>
    public static MsgValue BinAscii(string ascii)
    {
        ArgumentNullException.ThrowIfNull(ascii);
        return new MsgValue(MsgKind.Bin, 0, 0, Encoding.ASCII.GetBytes(ascii));
    }

    /// <summary>A bin that takes ownership of <paramref name="value"/>; the caller must not change it afterwards.</summary>
    internal static MsgValue BinNoCopy(byte[] value) => new(MsgKind.Bin, 0, 0, value);

    /// <summary>The frame length up to which a stored slice keeps its frame rather than a copy (see <see cref="Detached"/>).</summary>
    internal const int KeptFrameLength = 1024;

    /// <summary>
    /// A bin over <paramref name="length"/> bytes of <paramref name="array"/> from <paramref name="offset"/>, without a
    /// copy: the array must never change (a received message's own bytes). The offset and length live in the integer
    /// field, unused by a bin; 0 there means the whole array.
    /// </summary>
    internal static MsgValue BinSlice(byte[] array, int offset, int length) =>
        length == 0 ? BinNoCopy([])
        : offset == 0 && length == array.Length ? BinNoCopy(array)
        : new(MsgKind.Bin, ((Int128)offset << 32) | (uint)length, 0, array);

    /// <summary>
    /// This value with every bin that is a small slice of a large received message (<see cref="BinSlice"/>) copied out,
    /// or this value itself when it has none: what a node keeps for long (its stored entries) must not hold a large
    /// frame alive for a few bytes of it. A slice stays as it is when it is at least half of its frame (a 4 KiB value)
    /// or its frame is at most <see cref="KeptFrameLength"/> bytes: copying the bin and the arrays and maps around it
    /// allocates about as much as such a frame holds (it was 10% of the storage bench's CPU).
    /// </summary>
    internal MsgValue Detached()
    {
        switch (Kind)
        {
            case MsgKind.Bin when _int != 0:
                var slice = Bytes;
                var frameLength = ((byte[])_ref!).Length;
                return frameLength <= KeptFrameLength || (long)slice.Length * 2 >= frameLength ? this : BinNoCopy(slice.ToArray());
            case MsgKind.Array when _ref is byte[] frame:
                // Kept in place (a received batch answer's entries): the same rule as a bin's, for the array's bytes.
                var encoded = PreEncoded!.Value;
                return _int == 0 || frame.Length <= KeptFrameLength || (long)encoded.Length * 2 >= frame.Length ? this : PreEncodedArray(encoded.ToArray());
            case MsgKind.Array:
                var items = AsArray();
                MsgValue[]? copy = null;
                for (var i = 0; i < items.Length; i++)
                {
                    var item = items[i].Detached();
                    if (!ReferenceEquals(item, items[i]))
                    {
                        copy ??= items.ToArray();
                        copy[i] = item;
                    }
                }

                return copy is null ? this : ArrayOwning(copy);
            case MsgKind.Map:
                var entries = AsMap();
                KeyValuePair<MsgValue, MsgValue>[]? detached = null;
                for (var i = 0; i < entries.Length; i++)
                {
                    var (key, value) = entries[i];
                    var (k, v) = (key.Detached(), value.Detached());
                    if (!ReferenceEquals(k, key) || !ReferenceEquals(v, value))
                    {
                        detached ??= entries.ToArray();
                        detached[i] = new(k, v);
                    }
                }

                return detached is null ? this : MapOwning(detached);
            default:
                return this;
        }
    }

    /// <summary>The bytes of a bin or an ext (a bin may be a slice of a larger array).</summary>
    private ReadOnlyMemory<byte> Bytes => Kind == MsgKind.Bin && _int != 0
        ? new ReadOnlyMemory<byte>((byte[])_ref!, (int)(_int >> 32), (int)(uint)(_int & uint.MaxValue))
        : (byte[])_ref!;

    /// <summary>An array.</summary>
    public static MsgValue Array(params ReadOnlySpan<MsgValue> items) => new(MsgKind.Array, 0, 0, items.ToArray());

    /// <summary>An array over <paramref name="items"/> itself, without a copy: the caller gives the array up (the reader's own arrays).</summary>
    internal static MsgValue ArrayOwning(MsgValue[] items) => new(MsgKind.Array, 0, 0, items);

    /// <summary>An array.</summary>
    public static MsgValue Array(IEnumerable<MsgValue> items) => new(MsgKind.Array, 0, 0, items.ToArray());

    /// <summary>A map over <paramref name="entries"/> without a copy; the caller must not change them afterwards.</summary>
    internal static MsgValue MapOwning(KeyValuePair<MsgValue, MsgValue>[] entries) =>
        new(MsgKind.Map, 0, 0, System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(entries));

    /// <summary>A map; the entry order is kept for encoding.</summary>
    public static MsgValue Map(IEnumerable<KeyValuePair<MsgValue, MsgValue>> entries) =>
        new(MsgKind.Map, 0, 0, entries.ToImmutableArray());

    /// <summary>A map with str keys, the form py2p's dicts take.</summary>
    public static MsgValue Map(params ReadOnlySpan<(string Key, MsgValue Value)> entries)
    {
        var builder = ImmutableArray.CreateBuilder<KeyValuePair<MsgValue, MsgValue>>(entries.Length);
        foreach (var (key, value) in entries)
        {
            builder.Add(new(Str(key), value));
        }

        return new MsgValue(MsgKind.Map, 0, 0, builder.MoveToImmutable());
    }

    /// <summary>An extension value, kept as-is.</summary>
    public static MsgValue Ext(sbyte typeCode, ReadOnlySpan<byte> data) => new(MsgKind.Ext, typeCode, 0, data.ToArray());

    /// <summary>A str.</summary>
    public static implicit operator MsgValue(string value) => Str(value);

    /// <summary>An integer.</summary>
    public static implicit operator MsgValue(long value) => From(value);

    /// <summary>A bool.</summary>
    public static implicit operator MsgValue(bool value) => From(value);

    /// <summary>A float64.</summary>
    public static implicit operator MsgValue(double value) => From(value);

    /// <summary>A bin (copied).</summary>
    public static implicit operator MsgValue(byte[] value) => Bin(value);

    // ---- access ----------------------------------------------------------------------------------

    /// <summary>The bool; throws if this is not a bool.</summary>
    public bool AsBool() => Kind == MsgKind.Bool ? _int != 0 : throw WrongKind(MsgKind.Bool);

    /// <summary>The integer as <see cref="Int128"/>, wide enough for every msgpack integer.</summary>
    public Int128 AsInteger() => Kind == MsgKind.Int ? _int : throw WrongKind(MsgKind.Int);

    /// <summary>The integer as long; throws if it is not an integer or does not fit.</summary>
    public long AsInt64()
    {
        var value = AsInteger();
        return value >= long.MinValue && value <= long.MaxValue
            ? (long)value
            : throw new InvalidCastException($"The integer {value} does not fit in a long.");
    }

    /// <summary>True when this is an integer that fits an int; the integer is in <paramref name="value"/>.</summary>
    public bool TryGetInt32(out int value)
    {
        if (Kind == MsgKind.Int && _int >= int.MinValue && _int <= int.MaxValue)
        {
            value = (int)_int;
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>The float as double; throws if this is not a float.</summary>
    public double AsDouble() => Kind == MsgKind.Float ? _float : throw WrongKind(MsgKind.Float);

    /// <summary>The text of a str; throws if this is not a str.</summary>
    public string AsString() => Kind == MsgKind.Str ? (string)_ref! : throw WrongKind(MsgKind.Str);

    /// <summary>The bytes of a bin (or of an ext); throws for other kinds.</summary>
    public ReadOnlyMemory<byte> AsBytes() =>
        Kind is MsgKind.Bin or MsgKind.Ext ? Bytes : throw WrongKind(MsgKind.Bin);

    /// <summary>The bytes of a bin read as ASCII text (ids, base58 numbers); throws for other kinds.</summary>
    public string AsAscii() => Kind == MsgKind.Bin ? Encoding.ASCII.GetString(Bytes.Span) : throw WrongKind(MsgKind.Bin);

    /// <summary>The type code of an ext value.</summary>
    public sbyte ExtTypeCode => Kind == MsgKind.Ext ? (sbyte)_int : throw WrongKind(MsgKind.Ext);

    /// <summary>The items of an array; throws if this is not an array.</summary>
    public ImmutableArray<MsgValue> AsArray() => Kind == MsgKind.Array
        ? ImmutableCollectionsMarshal.AsImmutableArray(_ref as MsgValue[] ?? DecodePreEncoded(PreEncoded!.Value))
        : throw WrongKind(MsgKind.Array);

    /// <summary>
    /// An array given as its msgpack encoding (<paramref name="encoded"/>: exactly one msgpack array, which the caller
    /// gives up and never changes): written out as those bytes, with no value object per item. For answers a node makes
    /// only to send (a batch's entries: eight objects an entry otherwise). Read as an array (a test, a log line), it is
    /// decoded each time.
    /// </summary>
    internal static MsgValue PreEncodedArray(byte[] encoded) => new(MsgKind.Array, 0, 0, encoded);

    /// <summary>
    /// An array that is <paramref name="length"/> bytes of <paramref name="frame"/> from <paramref name="offset"/>, already
    /// checked to be one well-formed msgpack array (<see cref="MsgPack"/>'s in-place packets of a received message): a
    /// handler reads it where it lies; read as an array, it is decoded then, its bins slices of the frame.
    /// </summary>
    internal static MsgValue PreEncodedArray(byte[] frame, int offset, int length) =>
        offset == 0 && length == frame.Length ? PreEncodedArray(frame) : new(MsgKind.Array, ((Int128)offset << 32) | (uint)length, 0, frame);

    /// <summary>The encoding of an array made by <see cref="PreEncodedArray(byte[])"/> or kept in place; null for any other value.</summary>
    internal ReadOnlyMemory<byte>? PreEncoded => Kind == MsgKind.Array && _ref is byte[] bytes
        ? _int == 0 ? bytes : new ReadOnlyMemory<byte>(bytes, (int)(_int >> 32), (int)(uint)(_int & uint.MaxValue))
        : (ReadOnlyMemory<byte>?)null; // typed: a bare null would convert to an empty ReadOnlyMemory (through byte[]), never null

    private static MsgValue[] DecodePreEncoded(ReadOnlyMemory<byte> encoded) =>
        ImmutableCollectionsMarshal.AsArray(MsgPack.ReadShared(encoded).AsArray())!;

    /// <summary>The entries of a map in their order; throws if this is not a map.</summary>
    public ImmutableArray<KeyValuePair<MsgValue, MsgValue>> AsMap() =>
        Kind == MsgKind.Map ? (ImmutableArray<KeyValuePair<MsgValue, MsgValue>>)_ref! : throw WrongKind(MsgKind.Map);

    /// <summary>Looks a key up in a map (the last entry wins, as in a Python dict built from msgpack).</summary>
    public bool TryGetValue(MsgValue key, out MsgValue value)
    {
        var entries = AsMap();
        for (var i = entries.Length - 1; i >= 0; i--)
        {
            if (entries[i].Key.Equals(key))
            {
                value = entries[i].Value;
                return true;
            }
        }

        value = Nil;
        return false;
    }

    /// <summary>The number of items of an array or entries of a map.</summary>
    public int Count => Kind switch
    {
        MsgKind.Array => AsArray().Length,
        MsgKind.Map => AsMap().Length,
        _ => throw new InvalidOperationException($"A {Kind} value has no count; only arrays and maps do."),
    };

    /// <summary>Decodes str bytes strictly (invalid UTF-8 is an error, as it is for Python's msgpack).</summary>
    internal static MsgValue StrFromUtf8(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return new MsgValue(MsgKind.Str, 0, 0, StrictUtf8.GetString(utf8));
        }
        catch (DecoderFallbackException e)
        {
            throw new MsgFormatException("A msgpack str holds bytes that are not valid UTF-8.", e);
        }
    }

    // ---- equality --------------------------------------------------------------------------------

    /// <inheritdoc />
    public bool Equals(MsgValue? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (other is null || other.Kind != Kind)
        {
            return false;
        }

        switch (Kind)
        {
            case MsgKind.Nil:
                return true;
            case MsgKind.Bool:
            case MsgKind.Int:
                return _int == other._int;
            case MsgKind.Float:
                return _float.Equals(other._float);
            case MsgKind.Str:
                return string.Equals((string)_ref!, (string)other._ref!, StringComparison.Ordinal);
            case MsgKind.Bin:
                return Bytes.Span.SequenceEqual(other.Bytes.Span);
            case MsgKind.Ext:
                return _int == other._int && Bytes.Span.SequenceEqual(other.Bytes.Span);
            case MsgKind.Array:
                var a = AsArray();
                var b = other.AsArray();
                if (a.Length != b.Length)
                {
                    return false;
                }

                for (var i = 0; i < a.Length; i++)
                {
                    if (!a[i].Equals(b[i]))
                    {
                        return false;
                    }
                }

                return true;
            case MsgKind.Map:
                return MapEquals(this, other);
            default:
                return false;
        }
    }

    private static bool MapEquals(MsgValue x, MsgValue y)
    {
        var left = ToDictionary(x);
        var right = ToDictionary(y);
        if (left.Count != right.Count)
        {
            return false;
        }

        foreach (var (key, value) in left)
        {
            if (!right.TryGetValue(key, out var other) || !value.Equals(other))
            {
                return false;
            }
        }

        return true;
    }

    private static Dictionary<MsgValue, MsgValue> ToDictionary(MsgValue map)
    {
        var entries = map.AsMap();
        var result = new Dictionary<MsgValue, MsgValue>(entries.Length);
        foreach (var (key, value) in entries)
        {
            result[key] = value; // the last duplicate wins, as in Python
        }

        return result;
    }

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is MsgValue other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        switch (Kind)
        {
            case MsgKind.Nil:
                return 0;
            case MsgKind.Bool:
            case MsgKind.Int:
                return HashCode.Combine(Kind, _int);
            case MsgKind.Float:
                return HashCode.Combine(Kind, _float);
            case MsgKind.Str:
                return HashCode.Combine(Kind, string.GetHashCode((string)_ref!, StringComparison.Ordinal));
            case MsgKind.Bin:
            case MsgKind.Ext:
                var hash = new HashCode();
                hash.Add(Kind);
                hash.AddBytes(Bytes.Span);
                return hash.ToHashCode();
            case MsgKind.Array:
                var arrayHash = new HashCode();
                foreach (var item in AsArray())
                {
                    arrayHash.Add(item);
                }

                return arrayHash.ToHashCode();
            case MsgKind.Map:
                var mapHash = (int)MsgKind.Map;
                foreach (var (key, value) in ToDictionary(this))
                {
                    mapHash ^= HashCode.Combine(key, value); // order-insensitive, like the equality
                }

                return mapHash;
            default:
                return 0;
        }
    }

    /// <summary>Value equality.</summary>
    public static bool operator ==(MsgValue? left, MsgValue? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(MsgValue? left, MsgValue? right) => !(left == right);

    /// <summary>A Python-like rendering, for logs and test output.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Render(sb, 0);
        return sb.ToString();
    }

    private void Render(StringBuilder sb, int depth)
    {
        if (depth > 8 || sb.Length > 512)
        {
            sb.Append('…');
            return;
        }

        switch (Kind)
        {
            case MsgKind.Nil: sb.Append("None"); break;
            case MsgKind.Bool: sb.Append(AsBool() ? "True" : "False"); break;
            case MsgKind.Int: sb.Append(_int.ToString(CultureInfo.InvariantCulture)); break;
            case MsgKind.Float: sb.Append(_float.ToString("R", CultureInfo.InvariantCulture)); break;
            case MsgKind.Str: sb.Append('\'').Append(AsString()).Append('\''); break;
            case MsgKind.Bin: sb.Append("b'").Append(Convert.ToHexString(Bytes.Span)).Append('\''); break;
            case MsgKind.Ext: sb.Append("ExtType(").Append(ExtTypeCode).Append(", ").Append(Convert.ToHexString(Bytes.Span)).Append(')'); break;
            case MsgKind.Array:
                sb.Append('[');
                var first = true;
                foreach (var item in AsArray())
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }

                    first = false;
                    item.Render(sb, depth + 1);
                }

                sb.Append(']');
                break;
            case MsgKind.Map:
                sb.Append('{');
                var firstEntry = true;
                foreach (var (key, value) in AsMap())
                {
                    if (!firstEntry)
                    {
                        sb.Append(", ");
                    }

                    firstEntry = false;
                    key.Render(sb, depth + 1);
                    sb.Append(": ");
                    value.Render(sb, depth + 1);
                }

                sb.Append('}');
                break;
        }
    }

    private InvalidCastException WrongKind(MsgKind wanted) =>
        new($"Expected a msgpack {wanted} value but this value is a {Kind}.");
}
