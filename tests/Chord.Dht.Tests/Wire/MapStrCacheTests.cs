using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>The reader's cache of short map strs is process-wide: tests that look at it run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WireCacheCollection
{
    public const string Name = "Wire caches (run alone)";
}

/// <summary>The short strs of received maps are read through a bounded cache (MsgPack.ReadMapStr).</summary>
[Collection(WireCacheCollection.Name)]
public class MapStrCacheTests
{
    private static Message RoundTrip(params MsgValue[] payload) => MsgValueSliceTests.RoundTrip(payload);

    [Fact]
    public void The_short_strs_of_a_received_map_are_one_value_from_frame_to_frame_and_other_strs_are_not_shared()
    {
        static MsgValue Record(string incarnation) => MsgValue.Map(("incarnation", incarnation), ("grain", "bench/42"), ("long", new string('x', 65)));
        var first = RoundTrip(MsgValue.Str("top-level"), Record("0123abcd")).Payload;
        var second = RoundTrip(MsgValue.Str("top-level"), Record("0123abcd")).Payload;

        var (a, b) = (first[1].AsMap(), second[1].AsMap());
        Assert.Equal(first[1], second[1]);
        Assert.Same(a[0].Key, b[0].Key);     // "incarnation"
        Assert.Same(a[0].Value, b[0].Value); // "0123abcd"
        Assert.Same(a[1].Value, b[1].Value); // "bench/42"
        Assert.NotSame(a[2].Value, b[2].Value); // over 64 bytes: read afresh
        Assert.NotSame(first[0], second[0]);    // not in a map (a request id, say): read afresh
        Assert.Equal("0123abcd", b[0].Value.AsString());
    }
}
