using System.Numerics;

namespace Chord.Dht.Wire;

/// <summary>
/// py2p's base58 integers: most significant digit first, no padding, zero written as <c>"1"</c>.
/// Node ids and ring positions travel this way (as bin holding the ASCII digits).
/// </summary>
public static class Base58
{
    /// <summary>The 58 digits in order of value.</summary>
    public const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    private static readonly BigInteger FiftyEightToTheNinth = BigInteger.Pow(58, 9);
    private static readonly sbyte[] DigitValues = BuildDigitValues();

    /// <summary>Writes a non-negative integer in base58.</summary>
    public static string Encode(BigInteger value)
    {
        if (value.Sign < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "base58 integers are non-negative.");
        }

        if (value.IsZero)
        {
            return "1";
        }

        // 384 bits need 66 digits; size the buffer from the bit length so any width works. Nine digits at a time:
        // one BigInteger division per 9 digits (58^9 < 2^53), the rest in ulong arithmetic.
        Span<char> buffer = stackalloc char[(int)(value.GetBitLength() * 0.1707) + 10];
        var pos = buffer.Length;
        while (!value.IsZero)
        {
            value = BigInteger.DivRem(value, FiftyEightToTheNinth, out var chunkValue);
            var chunk = (ulong)chunkValue;
            for (var i = 0; i < 9 && (chunk != 0 || !value.IsZero); i++)
            {
                buffer[--pos] = Alphabet[(int)(chunk % 58)];
                chunk /= 58;
            }
        }

        return new string(buffer[pos..]);
    }

    /// <summary>Reads a base58 integer; an empty text or a character outside the alphabet throws <see cref="FormatException"/>.</summary>
    public static BigInteger Decode(ReadOnlySpan<char> text)
    {
        if (!TryDecode(text, out var value))
        {
            throw new FormatException(text.IsEmpty
                ? "A base58 integer needs at least one digit."
                : $"'{text}' is not a base58 integer: its digits must come from {Alphabet}.");
        }

        return value;
    }

    /// <summary>Reads a base58 integer from ASCII bytes, as it arrives in a bin.</summary>
    public static BigInteger Decode(ReadOnlySpan<byte> ascii)
    {
        Span<char> chars = ascii.Length <= 256 ? stackalloc char[ascii.Length] : new char[ascii.Length];
        for (var i = 0; i < ascii.Length; i++)
        {
            chars[i] = (char)ascii[i];
        }

        return Decode(chars);
    }

    /// <summary>Tries to read a base58 integer.</summary>
    public static bool TryDecode(ReadOnlySpan<char> text, out BigInteger value)
    {
        value = BigInteger.Zero;
        if (text.IsEmpty)
        {
            return false;
        }

        // Nine digits at a time fit a ulong (58^9 < 2^53), which keeps BigInteger work to one multiply per chunk.
        var i = 0;
        while (i < text.Length)
        {
            var chunk = Math.Min(9, text.Length - i);
            ulong part = 0;
            ulong scale = 1;
            for (var j = 0; j < chunk; j++, i++)
            {
                var c = text[i];
                var digit = c < 128 ? DigitValues[c] : (sbyte)-1;
                if (digit < 0)
                {
                    value = BigInteger.Zero;
                    return false;
                }

                part = (part * 58) + (ulong)digit;
                scale *= 58;
            }

            value = (value * scale) + part;
        }

        return true;
    }

    private static sbyte[] BuildDigitValues()
    {
        var values = new sbyte[128];
        Array.Fill(values, (sbyte)-1);
        for (var i = 0; i < Alphabet.Length; i++)
        {
            values[Alphabet[i]] = (sbyte)i;
        }

        return values;
    }
}
