using System.Numerics;
using System.Security.Cryptography;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>The cache of key positions gives what hashing gives, hands out copies, and stays bounded.</summary>
public sealed class KeyHashesCacheTests
{
    [Fact]
    public void Cached_positions_are_the_hashes_and_every_caller_gets_its_own_array()
    {
        var key = "cached key"u8.ToArray();
        var first = KeyHashes.All(key);
        first[2] = new RingPosition(BigInteger.One); // a caller that writes into its array changes nobody else's
        var second = KeyHashes.All(key);
        Assert.NotSame(first, second);
        var sha256 = new BigInteger(SHA256.HashData(key), isUnsigned: true, isBigEndian: true) << 128;
        Assert.Equal(sha256, second[(int)HashMethod.Sha256].Value);
        Assert.Equal(sha256, KeyHashes.Position(HashMethod.Sha256, key).Value);
        var sha512 = new BigInteger(SHA512.HashData(key), isUnsigned: true, isBigEndian: true);
        Assert.Equal(sha512, KeyHashes.Position(HashMethod.Sha512, key).Value);
    }

    [Fact]
    public void The_cache_never_holds_more_than_its_capacity_whatever_keys_arrive()
    {
        for (var i = 0; i < 10_000; i++)
        {
            _ = KeyHashes.Position(HashMethod.Sha1, System.Text.Encoding.UTF8.GetBytes($"flood-{i}"));
            // Other tests hash keys at the same time; a few concurrent misses may overshoot before the clear.
            Assert.True(KeyHashes.CachedKeysForTest <= 4096 + 64, $"{KeyHashes.CachedKeysForTest} keys cached after {i + 1}");
        }
    }

    [Fact]
    public void An_unknown_method_is_refused_with_the_known_ones_named()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => KeyHashes.Position((HashMethod)7, "k"u8));
        Assert.Contains("sha1, sha224, sha256, sha384 and sha512", e.Message, StringComparison.Ordinal);
    }
}
