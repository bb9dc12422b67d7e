using System.Buffers.Binary;
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

    private const uint FiftyEightToTheFifth = 58 * 58 * 58 * 58 * 58;
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

        // The number as 32-bit limbs on the stack, divided in place by 58^5 (which fits a uint) five digits at a
        // time: no BigInteger arithmetic, so nothing is allocated but the string. 384 bits are 12 limbs, 66 digits.
        var byteCount = value.GetByteCount(isUnsigned: true);
        var limbCount = (byteCount + 3) / 4;
        Span<byte> bytes = limbCount <= 64 ? stackalloc byte[limbCount * 4] : new byte[limbCount * 4];
        bytes.Clear();
        value.TryWriteBytes(bytes, out _, isUnsigned: true, isBigEndian: false);
        Span<uint> limbs = limbCount <= 64 ? stackalloc uint[limbCount] : new uint[limbCount];
        for (var i = 0; i < limbCount; i++)
        {
            limbs[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(i * 4)..]);
        }

        Span<char> buffer = limbCount <= 64 ? stackalloc char[(limbCount * 6) + 10] : new char[(limbCount * 6) + 10];
        var pos = buffer.Length;
        var top = limbCount; // limbs[top..] are zero
        while (top > 0)
        {
            ulong remainder = 0;
            for (var i = top - 1; i >= 0; i--)
            {
                var current = (remainder << 32) | limbs[i];
                limbs[i] = (uint)(current / FiftyEightToTheFifth);
                remainder = current % FiftyEightToTheFifth;
            }

            while (top > 0 && limbs[top - 1] == 0)
            {
                top--;
            }

            var chunk = (uint)remainder;
            for (var d = 0; d < 5 && (chunk != 0 || top > 0); d++)
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
        return Decode(Widen(ascii, chars));
    }

    /// <summary>Tries to read a base58 integer from ASCII bytes (a byte above 127 is no digit).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> ascii, out BigInteger value)
    {
        Span<char> chars = ascii.Length <= 256 ? stackalloc char[ascii.Length] : new char[ascii.Length];
        return TryDecode(Widen(ascii, chars), out value);
    }

    private static ReadOnlySpan<char> Widen(ReadOnlySpan<byte> ascii, Span<char> chars)
    {
        for (var i = 0; i < ascii.Length; i++)
        {
            chars[i] = (char)ascii[i];
        }

        return chars;
    }

    /// <summary>Tries to read a base58 integer.</summary>
    public static bool TryDecode(ReadOnlySpan<char> text, out BigInteger value)
    {
        value = BigInteger.Zero;
        if (text.IsEmpty)
        {
            return false;
        }

        // Five digits at a time (58^5 < 2^32) multiplied into 32-bit limbs on the stack; one BigInteger is made at
        // the end. Each digit adds log2(58) < 5.86 bits.
        var limbCapacity = (int)((text.Length * 5.86) / 32) + 2;
        Span<uint> limbs = limbCapacity <= 64 ? stackalloc uint[limbCapacity] : new uint[limbCapacity];
        limbs.Clear();
        var used = 0; // limbs[used..] are zero
        var i = 0;
        while (i < text.Length)
        {
            var chunk = Math.Min(5, text.Length - i);
            uint part = 0;
            uint scale = 1;
            for (var j = 0; j < chunk; j++, i++)
            {
                var c = text[i];
                var digit = c < 128 ? DigitValues[c] : (sbyte)-1;
                if (digit < 0)
                {
                    return false;
                }

                part = (part * 58) + (uint)digit;
                scale *= 58;
            }

            ulong carry = part;
            for (var k = 0; k < used; k++)
            {
                var product = ((ulong)limbs[k] * scale) + carry;
                limbs[k] = (uint)product;
                carry = product >> 32;
            }

            if (carry != 0)
            {
                limbs[used++] = (uint)carry;
            }
        }

        Span<byte> bytes = used <= 64 ? stackalloc byte[used * 4] : new byte[used * 4];
        for (var k = 0; k < used; k++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes[(k * 4)..], limbs[k]);
        }

        value = new BigInteger(bytes, isUnsigned: true, isBigEndian: false);
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
