using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Numerics;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Digests;

namespace Chord.Dht.Wire;

/// <summary>The five ring positions of a key (PROTOCOL.md §2).</summary>
public static class KeyHashes
{
    /// <summary>The methods in wire order.</summary>
    public static IReadOnlyList<HashMethod> Methods { get; } =
        [HashMethod.Sha1, HashMethod.Sha224, HashMethod.Sha256, HashMethod.Sha384, HashMethod.Sha512];

    private static readonly string[] WireNames = ["sha1", "sha224", "sha256", "sha384", "sha512"];

    /// <summary>The name of a method as it travels (bin): <c>sha1</c> … <c>sha512</c>.</summary>
    public static string WireName(this HashMethod method) => WireNames[(int)method];

    /// <summary>Reads a method name from the wire; unknown names return false.</summary>
    public static bool TryParse(ReadOnlySpan<byte> ascii, out HashMethod method)
    {
        for (var i = 0; i < WireNames.Length; i++)
        {
            if (ascii.Length == WireNames[i].Length && System.Text.Encoding.ASCII.GetString(ascii) == WireNames[i])
            {
                method = (HashMethod)i;
                return true;
            }
        }

        method = default;
        return false;
    }

    /// <summary>Keys up to this length have their positions cached (a key's positions are asked for several times per operation).</summary>
    private const int CachedKeyLength = 256;

    /// <summary>The cache holds at most this many keys; it is emptied when full (a few MB at most, whatever keys arrive).</summary>
    private const int CacheCapacity = 4096;

    private static readonly BoundedSpanCache<RingPosition[]> Cache = new(CacheCapacity);

    /// <summary>For tests: how many keys the position cache holds now.</summary>
    internal static int CachedKeysForTest => Cache.Count;

    /// <summary>The position of <paramref name="key"/> under one method.</summary>
    public static RingPosition Position(HashMethod method, ReadOnlySpan<byte> key)
    {
        if ((uint)method >= 5)
        {
            throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown hash method; the methods are sha1, sha224, sha256, sha384 and sha512.");
        }

        return key.Length <= CachedKeyLength ? Cached(key)[(int)method] : Compute(method, key); // a long key: just the one asked for
    }

    /// <summary>All five positions of <paramref name="key"/>, in the order of <see cref="Methods"/> (a new array each call).</summary>
    public static RingPosition[] All(ReadOnlySpan<byte> key) => (RingPosition[])Cached(key).Clone();

    /// <summary>
    /// All five positions of <paramref name="key"/> without a copy: the cached array itself, read-only. For the
    /// per-request paths (a get asked for a new array each time: 1.7% of its bytes).
    /// </summary>
    internal static ImmutableArray<RingPosition> AllShared(ReadOnlySpan<byte> key) => ImmutableCollectionsMarshal.AsImmutableArray(Cached(key));

    /// <summary>The key's five positions, computed once while the key stays in the cache. Handed out only as copies or read-only.</summary>
    private static RingPosition[] Cached(ReadOnlySpan<byte> key)
    {
        if (Cache.TryGet(key, out var positions))
        {
            return positions;
        }

        positions = new RingPosition[5];
        for (var i = 0; i < 5; i++)
        {
            positions[i] = Compute((HashMethod)i, key);
        }

        if (key.Length <= CachedKeyLength)
        {
            Cache.Add(key, positions);
        }

        return positions;
    }

    private static RingPosition Compute(HashMethod method, ReadOnlySpan<byte> key)
    {
        Span<byte> digest = stackalloc byte[64];
        int length;
        int shift;
        switch (method)
        {
            case HashMethod.Sha1:
                length = SHA1.HashData(key, digest);
                shift = 224;
                break;
            case HashMethod.Sha224:
                var sha224 = new Sha224Digest(); // .NET has no SHA-224; BouncyCastle's is the well-kept one
                sha224.BlockUpdate(key);
                length = sha224.DoFinal(digest);
                shift = 160;
                break;
            case HashMethod.Sha256:
                length = SHA256.HashData(key, digest);
                shift = 128;
                break;
            case HashMethod.Sha384:
                length = SHA384.HashData(key, digest);
                shift = 0;
                break;
            case HashMethod.Sha512:
                length = SHA512.HashData(key, digest);
                shift = 0;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown hash method; the methods are sha1, sha224, sha256, sha384 and sha512.");
        }

        var value = new BigInteger(digest[..length], isUnsigned: true, isBigEndian: true);
        return new RingPosition(value << shift);
    }
}
