using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains.Tests;

public sealed class KeyGrainTests(SharedChordCluster fixture) : IClassFixture<SharedChordCluster>
{
    private ChordTestCluster Chord => fixture.Cluster;

    private IChordKeyGrain Key(string key) => Chord.Grains.GetGrain<IChordKeyGrain>(key);

    [Fact]
    public void Three_silos_form_one_ring_by_themselves()
    {
        Assert.True(Chord.IsOneRing(out var divergence), divergence);
        var ids = Chord.Nodes.Select(n => n.Node.Id).ToList();
        Assert.Equal(3, ids.Distinct().Count());
    }

    [Fact]
    public async Task A_value_set_through_a_grain_is_read_through_every_silos_node_and_the_grain_caches_nothing()
    {
        await Key("greeting").Set("hello");

        foreach (var node in Chord.Nodes)
        {
            Assert.Equal("hello", await RingReads.ReadStringAsync(node.Node, "greeting"));
        }

        // The grain keeps no copy: writes that bypass it, on each silo's own node in turn, are what it reads next.
        foreach (var (node, i) in Chord.Nodes.Select((n, i) => (n, i)))
        {
            await node.Node.SetAsync("greeting", $"from-node-{i}");
            Assert.Equal($"from-node-{i}", (await Key("greeting").Get())?.AsString());
        }
    }

    [Fact]
    public async Task A_bare_ring_node_connected_to_the_ring_reads_what_a_grain_wrote_and_the_grain_reads_what_it_writes()
    {
        await Key("bare-1").Set(42L);
        await using var bare = new RingNode(new RingOptions());
        await bare.StartAsync();
        await bare.ConnectAsync(Chord.Nodes[1].Node.Mesh.Address);
        await Eventually.UntilAsync(() => bare.Members.Count(m => m.IsStoring) == 3, "the bare node learnt the three silo nodes");

        Assert.Equal(42L, (await bare.GetAsync("bare-1")).AsInt64());

        await bare.SetAsync("bare-2", MsgValue.Str("from the bare node"));
        Assert.Equal("from the bare node", (await Key("bare-2").Get())?.AsString());

        // The grain keeps no stale copy: a write by the bare node after a grain read is seen by the next grain read.
        await bare.SetAsync("bare-1", MsgValue.From(43L));
        Assert.Equal(43L, (await Key("bare-1").Get())?.AsInt64());
    }

    [Fact]
    public async Task Get_of_a_missing_key_is_null_and_delete_and_pop_say_whether_there_was_a_value()
    {
        Assert.Null(await Key("missing").Get());
        Assert.False(await Key("missing").Delete());
        Assert.Null(await Key("missing").Pop());

        await Key("to-delete").Set("x");
        Assert.True(await Key("to-delete").Delete());
        Assert.Null(await Key("to-delete").Get());

        await Key("to-pop").Set("y");
        Assert.Equal("y", (await Key("to-pop").Pop())?.AsString());
        Assert.Null(await Key("to-pop").Get());
    }

    [Fact]
    public async Task ApplyDelta_merges_maps_and_refuses_a_non_map()
    {
        var first = await Key("profile").ApplyDelta(ChordValue.FromMap([new("name", "ada")]));
        Assert.Equal("ada", first.AsMap()["name"]?.AsString());
        var merged = await Key("profile").ApplyDelta(ChordValue.FromMap([new("lang", "en")]));
        Assert.Equal(["lang", "name"], merged.AsMap().Keys.Order(StringComparer.Ordinal));
        Assert.Equal(merged, await Key("profile").Get());

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => Key("profile").ApplyDelta("not a map"));
        Assert.Contains("map", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Typed_values_round_trip_through_ChordValue()
    {
        var point = new Point { X = 3, Y = -4, Label = "p" };
        await Key("typed").Set(ChordValue.FromObject(point));
        var back = (await Key("typed").Get())!.As<Point>();
        Assert.Equal((3, -4, "p"), (back.X, back.Y, back.Label));

        await Key("bytes").Set(new byte[] { 0, 1, 255 });
        Assert.Equal(new byte[] { 0, 1, 255 }, (await Key("bytes").Get())!.AsBytes());
        await Key("float").Set(2.5);
        Assert.Equal(2.5, (await Key("float").Get())!.AsDouble());
        await Key("list").Set(ChordValue.FromList(["a", 1L, true]));
        Assert.Equal("[\"a\",1,true]", (await Key("list").Get())!.ToJson());
    }

    [Fact]
    public async Task Versioned_read_and_compare_and_set()
    {
        var grain = Key("cas");
        var none = await grain.GetVersioned();
        Assert.Null(none.Value);
        Assert.True(none.Version.IsNone);

        var first = await grain.SetIfVersion("v1", ChordVersion.None);
        Assert.True(first.Succeeded);
        Assert.Equal("v1", first.Current.Value?.AsString());
        Assert.Equal(first.Current, await grain.GetVersioned());

        var stale = await grain.SetIfVersion("v-stale", ChordVersion.None);
        Assert.False(stale.Succeeded);
        Assert.Equal(first.Current, stale.Current);
        Assert.Equal("v1", (await grain.Get())?.AsString());

        var second = await grain.SetIfVersion("v2", first.Current.Version);
        Assert.True(second.Succeeded);
        Assert.True(second.Current.Version.Counter > first.Current.Version.Counter);

        var deleted = await grain.SetIfVersion(null, second.Current.Version);
        Assert.True(deleted.Succeeded);
        Assert.Null(await grain.Get());
        Assert.Equal(ChordVersion.Parse(deleted.Current.Version.ToString()), (await grain.GetVersioned()).Version);
    }

    [Fact]
    public async Task Compare_and_set_after_a_read_is_one_winner_per_version_and_sees_writes_through_the_grain()
    {
        var grain = Key("cas-after-read");
        var read = await grain.GetVersioned();
        var first = await grain.SetIfVersionAfterRead("v1", read.Version);
        Assert.True(first.Succeeded);

        // The grain wrote v1 itself: this write skips the grain's own read, and lands.
        var second = await grain.SetIfVersionAfterRead("v2", first.Current.Version);
        Assert.True(second.Succeeded);
        Assert.Equal(second.Current, await grain.GetVersioned());

        // A second caller that read v1 too is refused: the grain's own version is v2 now, so it reads, and finds v2.
        var stale = await grain.SetIfVersionAfterRead("v-stale", first.Current.Version);
        Assert.False(stale.Succeeded);
        Assert.Equal(second.Current, stale.Current);

        // Other writes through the grain (here a plain Set) make it forget its version: the next one reads again.
        await grain.Set("plain");
        var afterPlain = await grain.SetIfVersionAfterRead("v3", second.Current.Version);
        Assert.False(afterPlain.Succeeded);
        Assert.Equal("plain", afterPlain.Current.Value?.AsString());

        // A write that bypassed the grain before the caller's read is seen by that read, as the storage provider does.
        await Chord.Nodes[0].Node.SetAsync("cas-after-read", "bypass");
        var fresh = await grain.GetVersioned();
        Assert.Equal("bypass", fresh.Value?.AsString());
        var last = await grain.SetIfVersionAfterRead("v4", fresh.Version);
        Assert.True(last.Succeeded);
        foreach (var node in Chord.Nodes)
        {
            Assert.Equal("v4", await RingReads.ReadStringAsync(node.Node, "cas-after-read"));
        }
    }

    [Fact]
    public async Task Inspect_reports_five_positions_owned_by_silo_nodes_all_agreeing()
    {
        await Key("inspected").Set("seen");
        var inspection = await Key("inspected").Inspect();
        Assert.Equal(5, inspection.Positions.Count);
        Assert.True(inspection.HasMajority);
        Assert.Equal("seen", inspection.Value?.AsString());
        Assert.Equal(KeyHashes.Methods.Select(m => m.WireName()), inspection.Positions.Select(p => p.Method));
        var siloIds = Chord.Nodes.Select(n => n.Node.Id).ToHashSet();
        Assert.All(inspection.Positions, p =>
        {
            Assert.True(p.Answered);
            Assert.True(p.AgreesWithMajority);
            Assert.Contains(p.OwnerId!, siloIds);
            Assert.Equal(inspection.Version, p.Version);
        });
    }

    [Fact]
    public async Task Writes_through_grains_are_ordered_per_key_under_500_concurrent_calls()
    {
        // 50 keys written at once; each key's 10 writes follow one another, so each write is acknowledged before
        // the next is sent, and the final value must be the last acknowledged one. Readers run meanwhile and must
        // never see a key go back to an older write.
        const int keys = 50, writes = 10;
        var regressions = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 4).Select(r => Task.Run(async () =>
        {
            var seen = new long[keys];
            while (!stop.IsCancellationRequested)
            {
                for (var k = r; k < keys; k += 4)
                {
                    var value = await Key($"order-{k}").Get();
                    var n = value?.AsInt64() ?? 0;
                    if (n < seen[k])
                    {
                        Interlocked.Increment(ref regressions);
                    }

                    seen[k] = Math.Max(seen[k], n);
                }
            }
        })).ToList();

        await Task.WhenAll(Enumerable.Range(0, keys).Select(async k =>
        {
            for (var i = 1; i <= writes; i++)
            {
                await Key($"order-{k}").Set((long)i);
            }
        }));
        await stop.CancelAsync();
        await Task.WhenAll(readers);

        for (var k = 0; k < keys; k++)
        {
            Assert.Equal(writes, (await Key($"order-{k}").Get())?.AsInt64());
        }

        Assert.Equal(0, regressions);
    }

    [Fact]
    public async Task Concurrent_writers_to_one_key_end_at_the_write_the_grain_ran_last()
    {
        // 100 calls at once to one key: the activation runs them one by one; the value left is the one whose call
        // was acknowledged last, which ApplyDelta lets us see: each write appends its number to the key's map.
        var grain = Key("contended");
        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => grain.ApplyDelta(ChordValue.FromMap([new($"w{i:D3}", (long)i)]))));
        var map = (await grain.Get())!.AsMap();
        Assert.Equal(100, map.Count); // no write lost: each merge saw every earlier one
    }

    [MessagePack.MessagePackObject(true)]
    public sealed class Point
    {
        public int X { get; set; }

        public int Y { get; set; }

        public string Label { get; set; } = string.Empty;
    }
}
