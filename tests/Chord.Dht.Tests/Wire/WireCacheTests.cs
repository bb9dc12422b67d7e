using System.Numerics;
using System.Text;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>The shared wire values: the same bytes as made afresh, once per id or position, and never a wrong read.</summary>
public sealed class WireCacheTests
{
    [Fact]
    public void A_cached_position_bin_is_the_base58_of_the_position_and_is_made_once()
    {
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var bytes = new byte[1 + random.Next(64)];
            random.NextBytes(bytes);
            var position = new BigInteger(bytes, isUnsigned: true);
            var bin = WireCache.PositionBin(position);
            Assert.Equal(MsgValue.BinAscii(Base58.Encode(position)), bin);
            Assert.True(MadeOnce(() => WireCache.PositionBin(position)), "a position's bin was made anew every time");
        }
    }

    [Fact]
    public void Reading_a_position_gives_what_base58_decoding_gives_and_refuses_what_it_refuses()
    {
        var position = BigInteger.Parse("123456789012345678901234567890123456789");
        var ascii = Encoding.ASCII.GetBytes(Base58.Encode(position));
        Assert.True(WireCache.TryReadPosition(ascii, 90, out var first));
        Assert.True(WireCache.TryReadPosition(ascii, 90, out var again)); // from the cache now
        Assert.Equal(position, first);
        Assert.Equal(position, again);

        Assert.False(WireCache.TryReadPosition("0OIl"u8, 90, out _)); // not base58 digits
        Assert.False(WireCache.TryReadPosition([(byte)'2', 0xC3, 0xA9], 90, out _)); // not ASCII
        Assert.False(WireCache.TryReadPosition([], 90, out _));
        Assert.False(WireCache.TryReadPosition(Encoding.ASCII.GetBytes(new string('z', 91)), 90, out _)); // too long to decode at all
    }

    [Fact]
    public void Writer_and_method_bins_are_their_ascii_bytes()
    {
        var writer = NodeIdentity.NodeId("127.0.0.1", 4444, NodeIdentity.ProtocolId("chord"), "wire-cache");
        var bin = WireCache.WriterBin(writer);
        Assert.Equal(MsgValue.BinAscii(writer), bin);
        Assert.True(MadeOnce(() => WireCache.WriterBin(writer)), "a writer's bin was made anew every time");
        Assert.Equal(MsgValue.BinAscii(new string('x', 200)), WireCache.WriterBin(new string('x', 200))); // too long to keep, still right
        foreach (var method in Enum.GetValues<HashMethod>())
        {
            Assert.Equal(MsgValue.BinAscii(method.WireName()), WireCache.MethodName(method));
        }
    }

    /// <summary>
    /// True when two calls in a row return the same instance, in one of five tries: other tests fill the shared caches
    /// meanwhile, and a full cache is emptied, which one try may straddle; a cache that never reuses fails all five.
    /// </summary>
    private static bool MadeOnce(Func<MsgValue> make) => Enumerable.Range(0, 5).Any(_ => ReferenceEquals(make(), make()));
}
