using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>The canonical msgpack encoding of PROTOCOL.md §1 against the vectors' <c>msgpack_values</c>.</summary>
public class MsgPackVectorTests
{
    /// <summary>One case per vector: its index (the value is looked up) and its msgpack hex.</summary>
    public static TheoryData<int, string> Values()
    {
        var data = new TheoryData<int, string>();
        var index = 0;
        foreach (var entry in WireVectors.Section("msgpack_values").EnumerateArray())
        {
            data.Add(index++, WireVectors.Str(entry, "msgpack"));
        }

        return data;
    }

    /// <summary>The msgpack hex of every vector.</summary>
    public static TheoryData<string> Encodings()
    {
        var data = new TheoryData<string>();
        foreach (var entry in WireVectors.Section("msgpack_values").EnumerateArray())
        {
            data.Add(WireVectors.Str(entry, "msgpack"));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Values))]
    public void Decodes_to_the_vector_value(int index, string hex)
    {
        var expected = ExpectedValue(index);

        var actual = MsgPack.Deserialize(WireVectors.Hex(hex));

        Assert.Equal(expected.Kind, actual.Kind);
        Assert.Equal(expected, actual);
        Assert.Equal(expected.GetHashCode(), actual.GetHashCode());
    }

    [Theory]
    [MemberData(nameof(Values))]
    public void Encodes_to_the_exact_vector_bytes(int index, string hex)
    {
        Assert.Equal(hex, WireVectors.ToHex(MsgPack.Serialize(ExpectedValue(index))));
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Decoded_value_re_encodes_to_the_same_bytes(string hex)
    {
        Assert.Equal(hex, WireVectors.ToHex(MsgPack.Serialize(MsgPack.Deserialize(WireVectors.Hex(hex)))));
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Truncated_encoding_is_a_format_error(string hex)
    {
        var bytes = WireVectors.Hex(hex);
        Assert.Throws<MsgFormatException>(() => MsgPack.Deserialize(bytes.AsMemory(0, bytes.Length - 1)));
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Trailing_bytes_are_a_format_error(string hex)
    {
        byte[] bytes = [.. WireVectors.Hex(hex), 0xc0];
        Assert.Throws<MsgFormatException>(() => MsgPack.Deserialize(bytes));
    }

    [Fact]
    public void Every_vector_value_kind_is_covered()
    {
        var kinds = WireVectors.Section("msgpack_values").EnumerateArray()
            .Select(e => WireVectors.ToMsgValue(e.GetProperty("value")).Kind)
            .ToHashSet();
        var expected = new[] { MsgKind.Nil, MsgKind.Bool, MsgKind.Int, MsgKind.Float, MsgKind.Str, MsgKind.Bin, MsgKind.Array, MsgKind.Map };
        Assert.All(expected, kind => Assert.Contains(kind, kinds));
    }

    [Theory]
    [InlineData("c1")] // never used
    [InlineData("")]
    [InlineData("92")] // array of 2 with no items
    [InlineData("a3616263c0")] // str followed by a trailing nil
    [InlineData("a2c328")] // str holding invalid UTF-8
    [InlineData("dcffff")] // array 16 of 65535 items, no items
    [InlineData("ddffffffff")] // array 32 of 2^32-1 items, no items
    [InlineData("dfffffffff")] // map 32 of 2^32-1 entries, no entries
    [InlineData("c6ffffffff00")] // bin 32 longer than the input
    [InlineData("c67fffffff00")] // bin 32 of 2^31-1 bytes, one present
    [InlineData("c680000000")] // bin 32 of 2^31 bytes
    [InlineData("c4050102")] // bin 8 longer than the input
    [InlineData("dbffffffff61")] // str 32 of 2^32-1 bytes
    [InlineData("db8000000061")] // str 32 of 2^31 bytes
    [InlineData("da000561")] // str 16 longer than the input
    [InlineData("c9ffffffff0101")] // ext 32 of 2^32-1 bytes
    [InlineData("c98000000001")] // ext 32 of 2^31 bytes
    [InlineData("dd80000000")] // array 32 of 2^31 items
    [InlineData("df80000000")] // map 32 of 2^31 entries
    [InlineData("dc0002c0")] // array 16 one item short
    [InlineData("8101")] // map with a key and no value
    [InlineData("c7050101")] // ext 8 longer than the input
    public void Malformed_msgpack_is_a_format_error(string hex)
    {
        Assert.Throws<MsgFormatException>(() => MsgPack.Deserialize(WireVectors.Hex(hex)));
    }

    [Fact]
    public void Deep_nesting_is_a_format_error_not_a_stack_overflow()
    {
        var deep = Enumerable.Repeat((byte)0x91, 100_000).Append((byte)0xc0).ToArray();
        Assert.Throws<MsgFormatException>(() => MsgPack.Deserialize(deep));
    }

    [Fact]
    public void Moderate_nesting_decodes()
    {
        var nested = Enumerable.Repeat((byte)0x91, 32).Append((byte)0xc0).ToArray();
        var value = MsgPack.Deserialize(nested);
        for (var i = 0; i < 32; i++)
        {
            value = Assert.Single(value.AsArray());
        }

        Assert.True(value.IsNil);
    }

    [Theory]
    [InlineData("05")]
    [InlineData("cc05")]
    [InlineData("cd0005")]
    [InlineData("ce00000005")]
    [InlineData("cf0000000000000005")]
    [InlineData("d005")]
    [InlineData("d10005")]
    [InlineData("d200000005")]
    [InlineData("d30000000000000005")]
    public void Non_canonical_integer_widths_decode_to_the_same_value_and_re_encode_canonically(string hex)
    {
        var value = MsgPack.Deserialize(WireVectors.Hex(hex));
        Assert.Equal(MsgValue.From(5L), value);
        Assert.Equal("05", WireVectors.ToHex(MsgPack.Serialize(value)));
    }

    [Theory]
    [InlineData("a3616263")] // fixstr
    [InlineData("d903616263")] // str 8
    [InlineData("da0003616263")] // str 16
    [InlineData("db00000003616263")] // str 32
    public void Every_str_family_decodes_to_str(string hex)
    {
        Assert.Equal(MsgValue.Str("abc"), MsgPack.Deserialize(WireVectors.Hex(hex)));
    }

    [Theory]
    [InlineData("c403616263")] // bin 8
    [InlineData("c50003616263")] // bin 16
    [InlineData("c600000003616263")] // bin 32
    public void Every_bin_family_decodes_to_bin(string hex)
    {
        Assert.Equal(MsgValue.BinAscii("abc"), MsgPack.Deserialize(WireVectors.Hex(hex)));
    }

    [Theory]
    [InlineData("ca3fc00000", true)]
    [InlineData("cb3ff8000000000000", false)]
    public void Float_width_is_kept(string hex, bool isFloat32)
    {
        var value = MsgPack.Deserialize(WireVectors.Hex(hex));
        Assert.Equal(MsgKind.Float, value.Kind);
        Assert.Equal(1.5, value.AsDouble());
        Assert.Equal(isFloat32, value.IsFloat32);
        Assert.Equal(hex, WireVectors.ToHex(MsgPack.Serialize(value)));
    }

    [Theory]
    [InlineData("d4ff01", -1, "01")] // fixext 1 with the timestamp type code: kept as raw ext
    [InlineData("d50102ff", 1, "02ff")]
    [InlineData("c70005", 5, "")]
    [InlineData("c703070a0b0c", 7, "0a0b0c")]
    public void Ext_values_are_kept_as_type_code_and_bytes(string hex, int typeCode, string data)
    {
        var value = MsgPack.Deserialize(WireVectors.Hex(hex));
        Assert.Equal(MsgKind.Ext, value.Kind);
        Assert.Equal(typeCode, value.ExtTypeCode);
        Assert.Equal(data, WireVectors.ToHex(value.AsBytes().Span));
        Assert.Equal(hex, WireVectors.ToHex(MsgPack.Serialize(value)));
    }

    private static MsgValue ExpectedValue(int index) =>
        WireVectors.ToMsgValue(WireVectors.Section("msgpack_values")[index].GetProperty("value"));
}
