using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary>Deterministic inputs shared by the benchmarks (fixed seeds, so every run measures the same bytes).</summary>
internal static class TestData
{
    /// <summary>The sender time put in every message: a fixed Unix second.</summary>
    public const long Time = 1_700_000_000;

    /// <summary>A node id as py2p makes one: base58 of a 384-bit number.</summary>
    public static readonly string SenderId = Base58.Encode(Unsigned(SHA384.HashData("bench-sender"u8)));

    /// <summary>
    /// Text-like bytes: lowercase letters and spaces drawn from a seeded generator. They have no repeats for
    /// snappy to find (a 4 KiB store frame stays 4,284 → 4,289 bytes) and zlib at its fastest level takes it to
    /// 3,697 bytes, so the compressed benchmarks measure codec cost, not savings.
    /// </summary>
    public static byte[] TextLikeBytes(int length, int seed = 42)
    {
        const string Alphabet = "etaoinshrdlu     ";
        var random = new Random(seed);
        var bytes = new byte[length];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)Alphabet[random.Next(Alphabet.Length)];
        }

        return bytes;
    }

    /// <summary>A non-negative integer of exactly <paramref name="bits"/> bits (the top bit set), from a seeded digest chain.</summary>
    public static BigInteger IntegerOfBits(int bits)
    {
        var bytes = new byte[(bits + 7) / 8];
        var block = SHA512.HashData(Encoding.ASCII.GetBytes($"bench-{bits}"));
        for (var i = 0; i < bytes.Length; i += block.Length)
        {
            block.AsSpan(0, Math.Min(block.Length, bytes.Length - i)).CopyTo(bytes.AsSpan(i));
            block = SHA512.HashData(block);
        }

        bytes[0] |= 0x80;
        return Unsigned(bytes) >> ((bytes.Length * 8) - bits);
    }

    /// <summary>
    /// The payload of a store request as RingNode sends it: <c>[11, bin "sha1", bin base58 position, value]</c>.
    /// </summary>
    public static MsgValue[] StorePayload(MsgValue value)
    {
        var position = KeyHashes.Position(HashMethod.Sha1, "bench-key"u8);
        return
        [
            MsgValue.From((long)SubFlag.Store),
            MsgValue.BinAscii(HashMethod.Sha1.WireName()),
            MsgValue.BinAscii(position.ToBase58()),
            value,
        ];
    }

    /// <summary>A small py2p-style dict: str keys, a few scalar values.</summary>
    public static MsgValue SmallMap(string name = "alice", long retries = 3) => MsgValue.Map(
        ("name", name),
        ("retries", retries),
        ("enabled", true),
        ("ratio", 0.75),
        ("tags", MsgValue.Array("a", "b")));

    /// <summary>An array nested four deep, mixing ints, strs, a bin and a map.</summary>
    public static MsgValue NestedArray() => MsgValue.Array(
        1L,
        "two",
        MsgValue.Array(3L, MsgValue.Array(4L, 5L, MsgValue.Array(6L, "seven", MsgValue.Bin(TextLikeBytes(16))))),
        MsgValue.Map(("k", MsgValue.Array(8L, 9L, 10L)), ("v", MsgValue.Nil)),
        MsgValue.Array(Enumerable.Range(0, 16).Select(i => MsgValue.From((long)i * 1000))));

    private static BigInteger Unsigned(ReadOnlySpan<byte> bigEndian) => new(bigEndian, isUnsigned: true, isBigEndian: true);
}
