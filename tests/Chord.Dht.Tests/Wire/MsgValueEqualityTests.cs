using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// <see cref="MsgValue"/> equality: type fidelity (bin is not str, an int is not a bool), maps as dicts,
/// integers by value whatever their width, and hash codes that agree.
/// </summary>
public class MsgValueEqualityTests
{
    [Fact]
    public void Bin_and_str_with_the_same_bytes_differ()
    {
        var bin = MsgValue.BinAscii("abc");
        var str = MsgValue.Str("abc");

        Assert.NotEqual(bin, str);
        Assert.NotEqual(str, bin);
        Assert.False(bin == str);
        Assert.True(bin != str);
        Assert.Equal(MsgValue.Bin("abc"u8), bin);
        Assert.Equal(bin.GetHashCode(), MsgValue.Bin("abc"u8).GetHashCode());
        Assert.NotEqual(MsgPack.Deserialize(WireVectors.Hex("c403616263")), MsgPack.Deserialize(WireVectors.Hex("a3616263")));
    }

    [Fact]
    public void Empty_bin_and_empty_str_differ()
    {
        Assert.NotEqual(MsgValue.Bin([]), MsgValue.Str(string.Empty));
    }

    [Fact]
    public void Bin_and_ext_with_the_same_bytes_differ()
    {
        Assert.NotEqual(MsgValue.Bin([1, 2]), MsgValue.Ext(0, [1, 2]));
        Assert.NotEqual(MsgValue.Ext(1, [1, 2]), MsgValue.Ext(2, [1, 2]));
        Assert.Equal(MsgValue.Ext(1, [1, 2]), MsgValue.Ext(1, [1, 2]));
    }

    [Fact]
    public void Map_equality_ignores_entry_order()
    {
        var ab = MsgValue.Map(("a", MsgValue.From(1L)), ("b", MsgValue.Array(MsgValue.True, MsgValue.Nil)));
        var ba = MsgValue.Map(("b", MsgValue.Array(MsgValue.True, MsgValue.Nil)), ("a", MsgValue.From(1L)));

        Assert.Equal(ab, ba);
        Assert.Equal(ab.GetHashCode(), ba.GetHashCode());
        Assert.NotEqual(WireVectors.ToHex(MsgPack.Serialize(ab)), WireVectors.ToHex(MsgPack.Serialize(ba))); // order is kept for encoding
    }

    [Fact]
    public void Maps_with_different_content_differ()
    {
        var map = MsgValue.Map(("a", MsgValue.From(1L)), ("b", MsgValue.From(2L)));

        Assert.NotEqual(map, MsgValue.Map(("a", MsgValue.From(1L))));
        Assert.NotEqual(map, MsgValue.Map(("a", MsgValue.From(1L)), ("b", MsgValue.From(3L))));
        Assert.NotEqual(map, MsgValue.Map(("a", MsgValue.From(1L)), ("c", MsgValue.From(2L))));
        Assert.NotEqual(map, MsgValue.Map(
        [
            new KeyValuePair<MsgValue, MsgValue>(MsgValue.BinAscii("a"), MsgValue.From(1L)),
            new KeyValuePair<MsgValue, MsgValue>(MsgValue.BinAscii("b"), MsgValue.From(2L)),
        ]));
        Assert.NotEqual(map, MsgValue.Array(MsgValue.Str("a"), MsgValue.From(1L), MsgValue.Str("b"), MsgValue.From(2L)));
    }

    [Fact]
    public void Map_with_a_repeated_key_equals_the_dict_python_would_build()
    {
        var repeated = MsgPack.Deserialize(WireVectors.Hex("82a16101a16102")); // {"a": 1, "a": 2}
        var last = MsgValue.Map(("a", MsgValue.From(2L)));

        Assert.Equal(last, repeated);
        Assert.Equal(repeated, last);
        Assert.Equal(last.GetHashCode(), repeated.GetHashCode());
        Assert.True(repeated.TryGetValue(MsgValue.Str("a"), out var value));
        Assert.Equal(MsgValue.From(2L), value);
    }

    [Fact]
    public void Array_equality_respects_order()
    {
        Assert.NotEqual(MsgValue.Array(MsgValue.From(1L), MsgValue.From(2L)), MsgValue.Array(MsgValue.From(2L), MsgValue.From(1L)));
        Assert.NotEqual(MsgValue.Array(MsgValue.From(1L)), MsgValue.Array(MsgValue.From(1L), MsgValue.Nil));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(5L)]
    [InlineData(127L)]
    [InlineData(128L)]
    [InlineData(65536L)]
    [InlineData(long.MaxValue)]
    public void Integer_equality_ignores_the_width_that_carried_it(long value)
    {
        var signed = MsgValue.From(value);
        var unsigned = MsgValue.From((ulong)value);
        var decoded = MsgPack.Deserialize(WireVectors.Hex("cf" + ((ulong)value).ToString("x16", System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Equal(signed, unsigned);
        Assert.Equal(signed, decoded);
        Assert.Equal(signed.GetHashCode(), unsigned.GetHashCode());
        Assert.Equal(signed.GetHashCode(), decoded.GetHashCode());
    }

    [Fact]
    public void Integers_of_different_value_differ_even_with_the_same_bits()
    {
        Assert.NotEqual(MsgValue.From(-1L), MsgValue.From(ulong.MaxValue));
        Assert.NotEqual(MsgValue.From(long.MinValue), MsgValue.From((ulong)long.MaxValue + 1));
        Assert.Equal(ulong.MaxValue, (ulong)MsgValue.From(ulong.MaxValue).AsInteger());
    }

    [Fact]
    public void An_int_is_not_a_bool()
    {
        Assert.NotEqual(MsgValue.From(1L), MsgValue.True);
        Assert.NotEqual(MsgValue.True, MsgValue.From(1L));
        Assert.NotEqual(MsgValue.From(0L), MsgValue.False);
        Assert.NotEqual(MsgValue.Nil, MsgValue.False);
        Assert.NotEqual(MsgValue.Nil, MsgValue.From(0L));
    }

    [Fact]
    public void An_int_is_not_a_float()
    {
        Assert.NotEqual(MsgValue.From(1L), MsgValue.From(1.0));
        Assert.NotEqual(MsgValue.From(1.0), MsgValue.From(1L));
    }

    [Fact]
    public void Floats_compare_by_value_whatever_their_width()
    {
        Assert.Equal(MsgValue.From(1.5), MsgValue.From(1.5f));
        Assert.Equal(MsgValue.From(1.5).GetHashCode(), MsgValue.From(1.5f).GetHashCode());
        Assert.Equal(MsgValue.From(double.NaN), MsgValue.From(float.NaN));
        Assert.Equal(MsgValue.From(double.NaN).GetHashCode(), MsgValue.From(float.NaN).GetHashCode());
        Assert.Equal(MsgValue.From(0.0), MsgValue.From(-0.0));
        Assert.Equal(MsgValue.From(0.0).GetHashCode(), MsgValue.From(-0.0).GetHashCode());
        Assert.NotEqual(MsgValue.From(0.1), MsgValue.From(0.1f));
    }

    [Fact]
    public void Equality_operators_handle_null()
    {
        MsgValue? none = null;
        Assert.True(none == null);
        Assert.False(MsgValue.Nil == none);
        Assert.False(none == MsgValue.Nil);
        Assert.True(MsgValue.Nil != none);
        Assert.False(MsgValue.Nil.Equals(none));
        Assert.False(MsgValue.Nil.Equals((object)"None"));
    }

    [Fact]
    public void Str_equality_is_ordinal()
    {
        Assert.NotEqual(MsgValue.Str("é"), MsgValue.Str("e\u0301")); // precomposed vs combining: different code points
        Assert.NotEqual(MsgValue.Str("a"), MsgValue.Str("A"));
    }

    [Fact]
    public void Hash_codes_agree_with_equality_for_random_pairs()
    {
        Gen.Select(WireGen.Leaf, WireGen.Leaf).Sample((a, b) =>
        {
            Assert.Equal(a.Equals(b), b.Equals(a));
            if (a.Equals(b))
            {
                Assert.Equal(a.GetHashCode(), b.GetHashCode());
            }
        }, iter: 20_000);
    }

    [Fact]
    public void Hash_codes_agree_with_equality_for_reshaped_copies()
    {
        Gen.Select(WireGen.Value, Gen.Int).Sample((value, seed) =>
        {
            var copy = Reshape(value, new Random(seed));

            Assert.Equal(value, copy);
            Assert.Equal(copy, value);
            Assert.Equal(value.GetHashCode(), copy.GetHashCode());
        }, iter: 2000);
    }

    /// <summary>An equal value built differently: map entries shuffled, integers through the other constructor, bytes copied.</summary>
    private static MsgValue Reshape(MsgValue value, Random random)
    {
        switch (value.Kind)
        {
            case MsgKind.Int:
                var integer = value.AsInteger();
                return integer >= 0 ? MsgValue.From((ulong)integer) : MsgValue.From((long)integer);
            case MsgKind.Str:
                return MsgValue.Str(new string(value.AsString().AsSpan()));
            case MsgKind.Bin:
                return MsgValue.Bin(value.AsBytes().ToArray());
            case MsgKind.Array:
                return MsgValue.Array(value.AsArray().Select(v => Reshape(v, random)).ToList());
            case MsgKind.Map:
                var entries = value.AsMap().Select(e => new KeyValuePair<MsgValue, MsgValue>(Reshape(e.Key, random), Reshape(e.Value, random))).ToList();
                var distinct = DistinctKeys(entries) ? entries.OrderBy(_ => random.Next()).ToList() : entries; // repeated keys: order decides
                return MsgValue.Map(distinct);
            default:
                return MsgPack.Deserialize(MsgPack.Serialize(value));
        }
    }

    private static bool DistinctKeys(List<KeyValuePair<MsgValue, MsgValue>> entries) =>
        entries.Select(e => e.Key).Distinct().Count() == entries.Count;
}
