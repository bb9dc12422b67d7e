using System.Numerics;
using System.Text;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>CsCheck generators for msgpack values, base58 integers and messages.</summary>
internal static class WireGen
{
    /// <summary>Integers at every msgpack width boundary, both sides.</summary>
    public static readonly Gen<long> BoundaryLong = Gen.OneOf(
        0L, 1L, 127L, 128L, 255L, 256L, 65535L, 65536L, 4294967295L, 4294967296L, long.MaxValue,
        -1L, -32L, -33L, -128L, -129L, -32768L, -32769L, int.MinValue, int.MinValue - 1L, long.MinValue);

    /// <summary>Unsigned integers above long's range, where only uint64 can carry them.</summary>
    public static readonly Gen<ulong> BoundaryULong = Gen.OneOf(ulong.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue - 1);

    /// <summary>Integer values across the whole int64 and uint64 range, biased toward width boundaries and small values.</summary>
    public static readonly Gen<MsgValue> Integer = Gen.Frequency(
        (3, Gen.Long.Select(MsgValue.From)),
        (2, Gen.Long.Uniform.Select(MsgValue.From)),
        (2, Gen.ULong.Select(MsgValue.From)),
        (3, BoundaryLong.Select(MsgValue.From)),
        (1, BoundaryULong.Select(MsgValue.From)),
        (3, Gen.Long[-40, 300].Select(MsgValue.From)));

    /// <summary>float64 and float32 values, special ones included (NaN, infinities, signed zeros, extremes).</summary>
    public static readonly Gen<MsgValue> Float = Gen.Frequency(
        (2, Gen.Double.Select(d => MsgValue.From(d))),
        (2, Gen.Double.Special.Select(d => MsgValue.From(d))),
        (1, Gen.Float.Select(f => MsgValue.From(f))),
        (1, Gen.Float.Special.Select(f => MsgValue.From(f))),
        (1, Gen.OneOf(0.0, -0.0, double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.Epsilon, double.MaxValue).Select(d => MsgValue.From(d))));

    /// <summary>Unicode scalar values: mostly ASCII, with controls, the rest of the BMP and the supplementary planes.</summary>
    public static readonly Gen<int> CodePoint = Gen.Frequency(
        (8, Gen.Int[0x20, 0x7E]),
        (1, Gen.Int[0x00, 0x1F]),
        (2, Gen.Int[0x80, 0x7FF]),
        (2, Gen.Int[0x800, 0xD7FF]),
        (1, Gen.Int[0xE000, 0xFFFF]),
        (2, Gen.Int[0x10000, 0x10FFFF]));

    /// <summary>Valid Unicode text (no lone surrogates), up to str 32 lengths now and then.</summary>
    public static readonly Gen<string> Text = Gen.Frequency(
        (20, CodePoint.Array[0, 40].Select(Concat)),
        (2, Gen.Char['a', 'z'].Array[28, 300].Select(c => new string(c))),
        (1, Gen.Int[65_530, 65_540].Select(n => new string('s', n))));

    /// <summary>Byte strings, up to bin 32 lengths now and then.</summary>
    public static readonly Gen<byte[]> Bytes = Gen.Frequency(
        (20, Gen.Byte.Array[0, 40]),
        (2, Gen.Byte.Array[250, 300]),
        (1, Gen.Int[65_530, 65_540].Select(n => new byte[n])));

    /// <summary>Ext values of every fixext size and the ext 8/16/32 forms.</summary>
    public static readonly Gen<MsgValue> Ext = Gen.Select(
        Gen.SByte,
        Gen.Frequency((10, Gen.Byte.Array[0, 20]), (1, Gen.Byte.Array[250, 300]), (1, Gen.Int[65_535, 65_537].Select(n => new byte[n]))),
        (type, data) => MsgValue.Ext(type, data));

    /// <summary>Every non-container value.</summary>
    public static readonly Gen<MsgValue> Leaf = Gen.Frequency(
        (1, Gen.Const(MsgValue.Nil)),
        (1, Gen.Bool.Select(MsgValue.From)),
        (4, Integer),
        (2, Float),
        (4, Text.Select(MsgValue.Str)),
        (3, Bytes.Select(b => MsgValue.Bin(b))),
        (1, Ext));

    /// <summary>Trees of values: arrays and maps (any key kind, repeated keys possible) nested up to four deep.</summary>
    public static readonly Gen<MsgValue> Value = Gen.Recursive<MsgValue>((depth, self) => depth >= 4
        ? Leaf
        : Gen.Frequency(
            (8, Leaf),
            (2, self.Array[0, 6].Select(items => MsgValue.Array(items.AsEnumerable()))),
            (1, Leaf.Array[16, 20].Select(items => MsgValue.Array(items.AsEnumerable()))),
            (2, Gen.Select(Gen.Frequency((3, Text.Select(MsgValue.Str)), (1, Leaf)), self).Array[0, 6].Select(Map)),
            (1, Gen.Select(Text.Select(MsgValue.Str), Leaf).Array[16, 20].Select(Map))));

    /// <summary>Non-negative integers from 0 to 600 bits, zero and small values included.</summary>
    public static readonly Gen<BigInteger> NonNegativeBig = Gen.Frequency(
        (8, Gen.Byte.Array[0, 75].Select(b => new BigInteger(b, isUnsigned: true, isBigEndian: true))),
        (1, Gen.Const(BigInteger.Zero)),
        (1, Gen.ULong.Select(u => new BigInteger(u))),
        (1, Gen.Int[0, 600].Select(bits => (BigInteger.One << bits) - 1)));

    /// <summary>Senders: 384-bit base58 node ids, or any printable ASCII.</summary>
    public static readonly Gen<string> Sender = Gen.Frequency(
        (3, Gen.Byte.Array[48].Select(b => Base58.Encode(new BigInteger(b, isUnsigned: true, isBigEndian: true)))),
        (1, Gen.Char[' ', '~'].Array[0, 70].Select(c => new string(c))));

    /// <summary>Times: plausible Unix seconds mostly, any long now and then.</summary>
    public static readonly Gen<long> Time = Gen.Frequency((4, Gen.Long[0, 4_102_444_800]), (1, Gen.Long));

    /// <summary>A message with a small-int sub-flag (or any value) and up to four more packets.</summary>
    public static readonly Gen<Message> Message = Gen.Select(
        Gen.Int[0, 4],
        Sender,
        Time,
        Gen.Frequency((4, Gen.Long[0, 0x11].Select(MsgValue.From)), (1, Leaf)),
        Value.Array[0, 4],
        (type, sender, time, subFlag, rest) => Chord.Dht.Wire.Message.Create((MainFlag)type, sender, time, [subFlag, .. rest]));

    /// <summary>No compression or one of the methods we implement.</summary>
    public static readonly Gen<CompressionMethod?> Method = Gen.OneOf<CompressionMethod?>(
        null, CompressionMethod.Snappy, CompressionMethod.Zlib, CompressionMethod.Gzip, CompressionMethod.Bz2);

    private static string Concat(int[] codePoints)
    {
        var builder = new StringBuilder(codePoints.Length * 2);
        foreach (var codePoint in codePoints)
        {
            builder.Append(char.ConvertFromUtf32(codePoint));
        }

        return builder.ToString();
    }

    private static MsgValue Map((MsgValue Key, MsgValue Value)[] entries) =>
        MsgValue.Map(entries.Select(e => new KeyValuePair<MsgValue, MsgValue>(e.Key, e.Value)).ToList());
}
