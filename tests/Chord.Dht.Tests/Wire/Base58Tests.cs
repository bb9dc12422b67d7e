using System.Numerics;
using System.Text;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>base58 integers beyond the vectors: bad input, and random round trips.</summary>
public class Base58Tests
{
    [Theory]
    [InlineData(9, 0)]
    [InlineData(9, -1)]
    [InlineData(9, 1)]
    [InlineData(18, 0)]
    [InlineData(18, -1)]
    [InlineData(27, 57)]
    public void Encoding_is_exact_at_the_nine_digit_chunk_boundaries(int power, int offset)
    {
        // Encode works nine digits at a time; values around 58^9k have all-zero or all-57 chunks.
        var value = BigInteger.Pow(58, power) + offset;
        var text = Base58.Encode(value);
        Assert.Equal(value, Base58.Decode(text));
        var expected = offset < 0
            ? new string('z', power)                                           // 58^k - 1: k digits of 57
            : "2" + new string('1', power - 1) + Base58.Alphabet[offset];      // 58^k + d: a one, zeros, then d
        Assert.Equal(expected, text);
    }

    [Fact]
    public void Empty_text_is_a_format_error_that_says_a_digit_is_needed()
    {
        var error = Assert.Throws<FormatException>(() => Base58.Decode(string.Empty));
        Assert.Contains("base58", error.Message, StringComparison.Ordinal);
        Assert.Contains("digit", error.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => Base58.Decode(ReadOnlySpan<byte>.Empty));
        Assert.False(Base58.TryDecode(string.Empty, out _));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("O")]
    [InlineData("I")]
    [InlineData("l")]
    [InlineData("21l")]
    [InlineData("abc0")]
    [InlineData("O2")]
    [InlineData("2I2")]
    [InlineData("-2")]
    [InlineData("+2")]
    [InlineData(" 2")]
    [InlineData("2 ")]
    [InlineData("2\n")]
    [InlineData("é")]
    [InlineData("\u0661")] // ARABIC-INDIC DIGIT ONE
    [InlineData("２")] // FULLWIDTH DIGIT TWO
    public void Characters_outside_the_alphabet_are_a_format_error_naming_the_text_and_the_alphabet(string text)
    {
        var error = Assert.Throws<FormatException>(() => Base58.Decode(text));
        Assert.Contains(text, error.Message, StringComparison.Ordinal);
        Assert.Contains(Base58.Alphabet, error.Message, StringComparison.Ordinal);
        Assert.False(Base58.TryDecode(text, out var value));
        Assert.Equal(BigInteger.Zero, value);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("O")]
    [InlineData("I")]
    [InlineData("l")]
    [InlineData("zzzzzzzzzzl")] // past the first nine-digit chunk
    public void Ascii_bytes_outside_the_alphabet_are_a_format_error(string text)
    {
        Assert.Throws<FormatException>(() => Base58.Decode(Encoding.ASCII.GetBytes(text)));
    }

    [Theory]
    [InlineData(0x80)]
    [InlineData(0xff)]
    [InlineData(0x00)]
    public void Non_ascii_bytes_are_a_format_error(byte b)
    {
        Assert.Throws<FormatException>(() => Base58.Decode([(byte)'2', b]));
    }

    [Fact]
    public void Negative_integers_cannot_be_encoded()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Base58.Encode(BigInteger.MinusOne));
    }

    [Theory]
    [InlineData("1", 0)]
    [InlineData("11", 0)]
    [InlineData("12", 1)]
    [InlineData("111z", 57)]
    public void Leading_zero_digits_are_read_as_python_reads_them(string text, long expected)
    {
        Assert.Equal(new BigInteger(expected), Base58.Decode(text));
    }

    [Fact]
    public void Random_integers_round_trip_in_the_shortest_form()
    {
        WireGen.NonNegativeBig.Sample(value =>
        {
            var text = Base58.Encode(value);

            Assert.Equal(value, Base58.Decode(text));
            Assert.Equal(value, Base58.Decode(Encoding.ASCII.GetBytes(text)));
            Assert.Equal(value, RingPosition.FromBase58(text).Value);
            Assert.Equal(text, Slow(value));
            Assert.True(value.IsZero ? text == "1" : text[0] != '1', $"'{text}' is padded.");
        }, iter: 5000);
    }

    [Fact]
    public void Random_digit_strings_decode_to_their_positional_value()
    {
        Gen.Char[Base58.Alphabet].Array[1, 120].Sample(digits =>
        {
            var expected = BigInteger.Zero;
            foreach (var digit in digits)
            {
                expected = (expected * 58) + Base58.Alphabet.IndexOf(digit, StringComparison.Ordinal);
            }

            Assert.Equal(expected, Base58.Decode(new string(digits)));
        }, iter: 5000);
    }

    /// <summary>The textbook encoding, one division at a time, as py2p's <c>to_base_58</c> does it.</summary>
    private static string Slow(BigInteger value)
    {
        if (value.IsZero)
        {
            return "1";
        }

        var digits = new StringBuilder();
        while (value > 0)
        {
            digits.Insert(0, Base58.Alphabet[(int)(value % 58)]);
            value /= 58;
        }

        return digits.ToString();
    }
}
