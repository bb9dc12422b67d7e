using System.Collections.Concurrent;
using System.Text;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>A person as an application stores it: a class-like record with a str, an int, a list and a nested object.</summary>
public sealed record TypedProfile(string Name, int Age, List<string> Tags, TypedAddress Home);

/// <summary>The nested object of <see cref="TypedProfile"/>.</summary>
public sealed record TypedAddress(string City, int Zip);

/// <summary>Every public member of <see cref="RingNode"/>, each on its own 3-node TCP ring.</summary>
public class RingApiTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    // Placement copies off: these tests count entries, and expect each position held once, at its owner.
    private static Task<RingTestCluster> StartRingAsync(int count = 3, Action<RingOptions>? configure = null) =>
        RingTestCluster.StartAsync(count, configure: o =>
        {
            o.KeepPlacementCopies = false;
            configure?.Invoke(o);
        });

    /// <summary>A ring that serves py2p stand-ins: the AllowUnauthenticated opt-in (our nodes still authenticate each other).</summary>
    private static Task<RingTestCluster> StartPy2pRingAsync(Action<RingOptions>? configure = null) =>
        StartRingAsync(configure: o =>
        {
            o.Mesh.Security = MeshSecurity.AllowUnauthenticated;
            configure?.Invoke(o);
        });

    private static byte[] Utf8(string key) => Encoding.UTF8.GetBytes(key);

    private static bool Knows(RingNode node, string key) => node.Keys.Any(k => k.AsSpan().SequenceEqual(Utf8(key)));

    // ---- GetAsync ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task GetAsync_returns_the_value_written_through_another_node()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("colour", "blue");
        await ring.Nodes[2].SetAsync("colour", "green"); // an overwrite through a third node

        foreach (var node in ring.Nodes)
        {
            Assert.Equal(MsgValue.Str("green"), await node.GetAsync("colour"));
            Assert.Equal(MsgValue.Str("green"), await node.GetAsync(Utf8("colour")));
        }
    }

    [Fact]
    public async Task GetAsync_throws_ChordKeyNotFoundException_for_a_missing_key()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("present", 1L);

        var e = await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync("absent"));
        Assert.Contains("'absent'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_throws_ChordNoMajorityException_when_the_positions_disagree()
    {
        await using var ring = await StartPy2pRingAsync();
        await using var writer = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await writer.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => writer.StoringPeerIds.Count == 3, Wait, "the py2p writer to learn the three storing nodes");

        // Straight to each owner, as a py2p node that routed them would send them: a, a, b, b, c. No value has 3 votes.
        var positions = RingTestData.Positions("split");
        MsgValue[] values = ["a", "a", "b", "b", "c"];
        var ids = ring.Nodes.Select(n => n.Id).ToList();
        for (var i = 0; i < 5; i++)
        {
            // A connection closed as the duplicate of one dialled at the same moment is replaced at once: try again.
            var index = i;
            await Eventually.UntilAsync(async () =>
            {
                try
                {
                    await writer.SendStoreToAsync(RingTestData.OwnerOf(ids, positions[index]), (HashMethod)index, positions[index], values[index]);
                    return true;
                }
                catch (InvalidOperationException)
                {
                    return false;
                }
            }, Wait, "the store to reach its owner");
        }

        await Eventually.UntilAsync(() => Enumerable.Range(0, 5).All(i =>
            ring.Nodes.Any(n => n.DumpData(n.Position, n.Position)[(HashMethod)i].TryGetValue(positions[i], out var v) && v == values[i])),
            Wait, "each owner to hold its disagreeing value");

        foreach (var node in ring.Nodes)
        {
            var e = await Assert.ThrowsAsync<ChordNoMajorityException>(() => node.GetAsync("split"));
            Assert.Equal(5, e.Answers);
        }
    }

    /// <summary>A storing py2p node that never answers a retrieve, connected to every node of <paramref name="ring"/>.</summary>
    private static async Task<LegacyPy2pPeer> StartSilentOwnerAsync(RingTestCluster ring)
    {
        var silent = await LegacyPy2pPeer.StartOwningAsync([.. ring.Nodes.Select(n => n.Id)], 0.3, storing: true, answerRetrieves: false);
        foreach (var node in ring.Nodes)
        {
            await silent.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.StoringPeers.Any(m => m.Id == silent.Id)), Wait,
            "every node to know the silent py2p node as storing");
        return silent;
    }

    [Fact]
    public async Task GetAsync_throws_ChordTimeoutException_when_too_few_positions_answer()
    {
        // A storing py2p node that never answers retrieves owns 3 of the key's positions: only 2 can answer.
        await using var ring = await StartPy2pRingAsync(configure: o => o.RequestTimeout = TimeSpan.FromSeconds(2));
        await using var silent = await StartSilentOwnerAsync(ring);
        var ids = ring.Nodes.Select(n => n.Id).Append(silent.Id).ToList();
        var key = Enumerable.Range(0, 10_000).Select(i => $"silent-{i}").First(k => RingTestData.PositionsOwnedBy(ids, k, silent.Id) >= 3);
        var answering = 5 - RingTestData.PositionsOwnedBy(ids, key, silent.Id);

        var e = await Assert.ThrowsAsync<ChordTimeoutException>(() => ring.Nodes[0].GetAsync(key));
        Assert.Equal(answering, e.Answered);
    }

    [Fact]
    public async Task GetAsync_throws_ChordTimeoutException_on_a_client_whose_storing_nodes_are_gone()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("orphan", "value");
        var client = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();
        Assert.Equal(MsgValue.Str("value"), await client.GetAsync("orphan"));

        foreach (var node in ring.Nodes.Where(n => n != client).ToList())
        {
            await ring.Remove(node).DisposeAsync();
        }

        var e = await Assert.ThrowsAsync<ChordTimeoutException>(() => client.GetAsync("orphan"));
        Assert.Equal(0, e.Answered);
    }

    // ---- GetOrDefaultAsync ---------------------------------------------------------------------------------------

    [Fact]
    public async Task GetOrDefaultAsync_returns_the_value_or_the_fallback_for_a_missing_key()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("here", "value");

        Assert.Equal(MsgValue.Str("value"), await ring.Nodes[1].GetOrDefaultAsync("here", "fallback"));
        Assert.Equal(MsgValue.Str("fallback"), await ring.Nodes[1].GetOrDefaultAsync("nowhere", "fallback"));
        Assert.Equal(MsgValue.From(7L), await ring.Nodes[2].GetOrDefaultAsync(Utf8("nowhere"), 7L, TimeSpan.FromSeconds(5)));
    }

    // ---- SetAsync, DeleteAsync, UpdateAsync ------------------------------------------------------------------------

    [Fact]
    public async Task SetAsync_rejects_a_nil_value_and_stores_nothing()
    {
        await using var ring = await StartRingAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => ring.Nodes[0].SetAsync("nil", MsgValue.Nil));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync("nil"));
        Assert.All(ring.Nodes, n => Assert.Equal(0, n.StoredCount));
    }

    [Fact]
    public async Task SetAsync_stores_the_key_at_its_five_positions_on_their_owners()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[1].SetAsync("placed", "here");

        var ids = ring.Nodes.Select(n => n.Id).ToList();
        var positions = RingTestData.Positions("placed");
        for (var i = 0; i < 5; i++)
        {
            var owner = ring.Nodes.Single(n => n.Id == RingTestData.OwnerOf(ids, positions[i]));
            Assert.Equal(MsgValue.Str("here"), owner.DumpData(owner.Position, owner.Position)[(HashMethod)i][positions[i]]);
        }

        Assert.Equal(5, ring.Nodes.Sum(n => n.StoredCount));
    }

    [Fact]
    public async Task DeleteAsync_removes_the_key_everywhere()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("doomed", "value");
        await ring.Nodes[0].SetAsync("kept", "value");

        await ring.Nodes[1].DeleteAsync("doomed");

        foreach (var node in ring.Nodes)
        {
            await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => node.GetAsync("doomed"));
            Assert.Equal(MsgValue.Str("value"), await node.GetAsync("kept"));
        }

        Assert.Equal(5, ring.Nodes.Sum(n => n.StoredCount)); // only "kept" is left
    }

    [Fact]
    public async Task DeleteAsync_of_an_unknown_key_throws_ChordKeyNotFoundException()
    {
        await using var ring = await StartRingAsync();

        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[0].DeleteAsync("never-set"));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[0].DeleteAsync(Utf8("never-set")));
    }

    [Fact]
    public async Task UpdateAsync_sets_every_pair()
    {
        await using var ring = await StartRingAsync();
        var pairs = Enumerable.Range(0, 20).Select(i => new KeyValuePair<byte[], MsgValue>(Utf8($"update-{i}"), MsgValue.From((long)i))).ToList();

        await ring.Nodes[0].UpdateAsync(pairs);

        foreach (var (key, value) in pairs)
        {
            Assert.Equal(value, await ring.Nodes[2].GetAsync(key));
        }
    }

    // ---- GetVersionedAsync, SetIfVersionAsync, SetAfterOwnWriteAsync ---------------------------------------------

    [Fact]
    public async Task SetIfVersionAsync_writes_only_at_the_expected_version()
    {
        await using var ring = await StartRingAsync();
        var (a, b) = (ring.Nodes[0], ring.Nodes[1]);
        Assert.Equal(EntryVersion.Zero, (await a.GetVersionedAsync("cas")).Version);

        var first = await a.SetIfVersionAsync("cas", "one", EntryVersion.Zero);
        Assert.True(first.Succeeded);
        Assert.Equal(first.Current.Version, (await b.GetVersionedAsync("cas")).Version);

        // A second writer with the same expectation finds the new version and writes nothing.
        var stale = await b.SetIfVersionAsync("cas", "two", EntryVersion.Zero);
        Assert.False(stale.Succeeded);
        Assert.Equal(first.Current, stale.Current);
        Assert.Equal("one", (await b.GetAsync("cas")).AsString());
    }

    [Fact]
    public async Task SetAfterOwnWriteAsync_writes_after_its_own_version_and_reports_a_newer_one_it_finds()
    {
        await using var ring = await StartRingAsync();
        var (writer, other) = (ring.Nodes[0], ring.Nodes[2]);
        var first = await writer.SetIfVersionAsync("own", "v1", EntryVersion.Zero);

        var second = await writer.SetAfterOwnWriteAsync("own", "v2", first.Current.Version);
        Assert.True(second.Succeeded);
        Assert.True(second.Current.Version > first.Current.Version);
        Assert.Equal(second.Current, await other.GetVersionedAsync("own"));

        // Two writes that bypass the writer put the key two counters ahead: the owners keep the newer version and
        // say so, so the write based on the writer's own last version is reported as not written.
        await other.SetAsync("own", "outside-1");
        await other.SetAsync("own", "outside-2");
        var late = await writer.SetAfterOwnWriteAsync("own", "v3", second.Current.Version);
        Assert.False(late.Succeeded);
        Assert.Equal("outside-2", late.Current.Value.AsString());
        Assert.Equal("outside-2", (await writer.GetAsync("own")).AsString());
    }

    [Fact]
    public async Task SetAfterOwnWriteAsync_refuses_a_null_key_and_a_null_value()
    {
        await using var ring = await StartRingAsync(1);
        var node = ring.Nodes[0];
        await Assert.ThrowsAsync<ArgumentNullException>(() => node.SetAfterOwnWriteAsync((byte[])null!, "v", EntryVersion.Zero));
        await Assert.ThrowsAsync<ArgumentNullException>(() => node.SetAfterOwnWriteAsync("key", null!, EntryVersion.Zero));
    }

    // ---- ApplyDeltaAsync -----------------------------------------------------------------------------------------

    [Fact]
    public async Task ApplyDeltaAsync_creates_the_map_and_returns_it()
    {
        await using var ring = await StartRingAsync();

        var merged = await ring.Nodes[0].ApplyDeltaAsync("profile", MsgValue.Map(("name", "ada"), ("age", 36L)));

        var expected = MsgValue.Map(("name", "ada"), ("age", 36L));
        Assert.Equal(expected, merged);
        Assert.Equal(expected, await ring.Nodes[1].GetAsync("profile"));
    }

    [Fact]
    public async Task ApplyDeltaAsync_merges_a_second_delta_into_the_stored_map()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].ApplyDeltaAsync("profile", MsgValue.Map(("name", "ada"), ("age", 36L)));

        var merged = await ring.Nodes[2].ApplyDeltaAsync("profile", MsgValue.Map(("age", 37L), ("city", "london")));

        var expected = MsgValue.Map(("name", "ada"), ("age", 37L), ("city", "london"));
        Assert.Equal(expected, merged);
        Assert.Equal(3, merged.Count); // "age" replaced, not repeated
        Assert.Equal(expected, await ring.Nodes[1].GetAsync("profile"));
    }

    [Fact]
    public async Task ApplyDeltaAsync_rejects_a_delta_that_is_not_a_map()
    {
        await using var ring = await StartRingAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => ring.Nodes[0].ApplyDeltaAsync("profile", MsgValue.Array("a", "b")));
        await Assert.ThrowsAsync<ArgumentException>(() => ring.Nodes[0].ApplyDeltaAsync("profile", "text"));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync("profile"));
    }

    [Fact]
    public async Task ApplyDeltaAsync_onto_a_stored_value_that_is_not_a_map_throws_ChordWriteException()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("scalar", "just text");

        var e = await Assert.ThrowsAsync<ChordWriteException>(() => ring.Nodes[1].ApplyDeltaAsync("scalar", MsgValue.Map(("a", 1L))));

        Assert.Equal(0, e.Acknowledged);
        Assert.Contains("not a map", e.Message, StringComparison.Ordinal);
        Assert.Equal(MsgValue.Str("just text"), await ring.Nodes[2].GetAsync("scalar"));
    }

    // ---- PopAsync, PopItemAsync ----------------------------------------------------------------------------------

    [Fact]
    public async Task PopAsync_returns_the_value_and_deletes_the_key()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("popped", "value");

        Assert.Equal(MsgValue.Str("value"), await ring.Nodes[1].PopAsync("popped"));

        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[2].GetAsync("popped"));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].PopAsync("popped"));
    }

    [Fact]
    public async Task PopAsync_with_a_fallback_pops_a_present_key_and_returns_the_fallback_for_a_missing_one()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("popped", "value");

        Assert.Equal(MsgValue.Str("value"), await ring.Nodes[1].PopAsync(Utf8("popped"), "fallback"));
        Assert.Equal(MsgValue.Str("fallback"), await ring.Nodes[1].PopAsync(Utf8("popped"), "fallback"));
        Assert.Equal(MsgValue.Str("fallback"), await ring.Nodes[2].PopAsync(Utf8("never-set"), "fallback"));
    }

    [Fact]
    public async Task PopItemAsync_pops_a_known_key_with_its_value()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("item", 3);
        foreach (var (key, value) in entries)
        {
            await ring.Nodes[0].SetAsync(key, value);
        }

        var (popped, poppedValue) = await ring.Nodes[0].PopItemAsync();

        var poppedKey = Encoding.UTF8.GetString(popped);
        Assert.Contains(poppedKey, entries.Keys);
        Assert.Equal(entries[poppedKey], poppedValue);
        Assert.False(Knows(ring.Nodes[0], poppedKey));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync(poppedKey));
        foreach (var other in entries.Keys.Where(k => k != poppedKey))
        {
            Assert.Equal(entries[other], await ring.Nodes[1].GetAsync(other));
        }
    }

    [Fact]
    public async Task PopItemAsync_throws_ChordKeyNotFoundException_when_no_known_key_has_a_value()
    {
        await using var ring = await StartRingAsync();

        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[0].PopItemAsync());
    }

    // ---- Keys, ValuesAsync, ItemsAsync, CopyAsync ------------------------------------------------------------------

    [Fact]
    public async Task Keys_are_learnt_by_every_node_from_notify_broadcasts_and_forgotten_on_delete()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("known", 10);
        foreach (var (key, value) in entries)
        {
            await ring.Nodes[0].SetAsync(key, value);
        }

        Assert.True(entries.Keys.All(k => Knows(ring.Nodes[0], k)), "the writer knows its own keys at once");
        await Eventually.UntilAsync(() => ring.Nodes.All(n => entries.Keys.All(k => Knows(n, k)) && n.Keys.Count == 10), Wait,
            "every node to learn the 10 keys");

        await ring.Nodes[1].DeleteAsync("known-3");
        await Eventually.UntilAsync(() => ring.Nodes.All(n => !Knows(n, "known-3") && n.Keys.Count == 9), Wait,
            "every node to forget the deleted key");
    }

    [Fact]
    public async Task ValuesAsync_yields_the_value_of_every_known_key()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("values", 8);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 1);
        await Eventually.UntilAsync(() => ring.Nodes[2].Keys.Count == 8, Wait, "node 2 to learn the keys");

        var values = new List<MsgValue>();
        await foreach (var value in ring.Nodes[2].ValuesAsync())
        {
            values.Add(value);
        }

        Assert.Equal(entries.Values.Select(v => v.AsString()).Order(), values.Select(v => v.AsString()).Order());
    }

    [Fact]
    public async Task ItemsAsync_yields_every_known_key_with_its_value_and_skips_deleted_ones()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("items", 8);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 2);
        await Eventually.UntilAsync(() => ring.Nodes[1].Keys.Count == 8, Wait, "node 1 to learn the keys");
        await ring.Nodes[0].DeleteAsync("items-0");

        var items = new Dictionary<string, MsgValue>();
        await foreach (var (key, value) in ring.Nodes[1].ItemsAsync())
        {
            items.Add(Encoding.UTF8.GetString(key), value);
        }

        entries.Remove("items-0");
        Assert.Equal(entries.OrderBy(e => e.Key), items.OrderBy(e => e.Key));
    }

    [Fact]
    public async Task CopyAsync_snapshots_every_known_key_with_its_value()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("copy", 8);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 3);
        await Eventually.UntilAsync(() => ring.Nodes[0].Keys.Count == 8, Wait, "node 0 to learn the keys");

        var copy = await ring.Nodes[0].CopyAsync();

        Assert.Equal(entries.OrderBy(e => e.Key), copy.Select(e => KeyValuePair.Create(Encoding.UTF8.GetString(e.Key), e.Value)).OrderBy(e => e.Key));
        Assert.Equal(entries["copy-1"], copy[Utf8("copy-1")]); // the dictionary is keyed by content, not by array reference
    }

    // ---- DumpData ------------------------------------------------------------------------------------------------

    [Fact]
    public async Task DumpData_with_start_equal_to_end_returns_the_whole_table_and_the_ring_holds_each_position_once()
    {
        await using var ring = await StartRingAsync();
        var entries = RingTestData.Entries("dump", 60);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 4);

        var ids = ring.Nodes.Select(n => n.Id).ToList();
        var expected = entries.SelectMany(e => RingTestData.Positions(e.Key).Select((p, i) => (Method: (HashMethod)i, Position: p, e.Value))).ToList();

        // A write returns once three positions accepted; the last accepts may still be on their way.
        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.StoredCount == expected.Count(x => RingTestData.OwnerOf(ids, x.Position) == n.Id)),
            "every owner to hold its positions");
        foreach (var node in ring.Nodes)
        {
            var anywhere = RingTestData.RandomPosition(new Random(node.Id.Length));
            var dump = node.DumpData(anywhere, anywhere);
            var mine = expected.Where(x => RingTestData.OwnerOf(ids, x.Position) == node.Id).ToList();

            Assert.Equal(node.StoredCount, dump.Values.Sum(d => d.Count));
            Assert.Equal(mine.Count, node.StoredCount);
            Assert.All(mine, x => Assert.Equal(x.Value, dump[x.Method][x.Position]));
            Assert.Equal(dump.Values.Sum(d => d.Count), node.DumpData(node.Position, node.Position).Values.Sum(d => d.Count));
        }
    }

    [Fact]
    public async Task DumpData_of_a_sub_range_returns_exactly_the_entries_in_it()
    {
        await using var ring = await StartRingAsync();
        await RingTestData.WriteAllAsync(ring.Nodes, RingTestData.Entries("range", 100), seed: 5);

        foreach (var node in ring.Nodes)
        {
            var all = node.DumpData(node.Position, node.Position);
            var next = node.Next!.Position;

            // A node owns [itself, its successor): that range is its whole table, the complement holds none of it.
            Assert.Equal(node.StoredCount, node.DumpData(node.Position, next).Values.Sum(d => d.Count));
            Assert.Equal(0, node.DumpData(next, node.Position).Values.Sum(d => d.Count));

            // The first half of that range: exactly the entries lying in it, by an independent range test.
            var middle = node.Position.Add(node.Position.DistanceTo(next) / 2);
            var half = node.DumpData(node.Position, middle);
            var expected = all.SelectMany(m => m.Value.Where(e => RingTestData.InRange(node.Position, middle, e.Key)).Select(e => (m.Key, e.Key, e.Value))).ToHashSet();
            var actual = half.SelectMany(m => m.Value.Select(e => (m.Key, e.Key, e.Value))).ToHashSet();
            Assert.Equal(expected, actual);
        }

        // On the node holding the most (a third of 500 entries on average) the half range is a proper, non-empty part.
        var busiest = ring.Nodes.MaxBy(n => n.StoredCount)!;
        var firstHalf = busiest.DumpData(busiest.Position, busiest.Position.Add(busiest.Position.DistanceTo(busiest.Next!.Position) / 2));
        Assert.InRange(firstHalf.Values.Sum(d => d.Count), 1, busiest.StoredCount - 1);
    }

    // ---- Find, FindPrev, Next, Prev ------------------------------------------------------------------------------

    private static List<RingPosition> ProbePositions(RingTestCluster ring)
    {
        var random = new Random(42);
        var probes = Enumerable.Range(0, 200).Select(_ => RingTestData.RandomPosition(random)).ToList();
        probes.AddRange(Enumerable.Range(0, 20).SelectMany(i => RingTestData.Positions($"probe-{i}"))); // sha512 ones are wider than the ring
        foreach (var node in ring.Nodes)
        {
            probes.Add(node.Position);
            probes.Add(node.Position.Add(RingPosition.Limit - 1)); // just before a node
            probes.Add(node.Position.Add(1));
        }

        return probes;
    }

    [Fact]
    public async Task Find_returns_the_storing_node_nearest_at_or_before_the_position()
    {
        await using var ring = await StartRingAsync();
        var ids = ring.Nodes.Select(n => n.Id).ToList();

        foreach (var node in ring.Nodes)
        {
            foreach (var position in ProbePositions(ring))
            {
                Assert.Equal(RingTestData.OwnerOf(ids, position), node.Find(position)?.Id);
            }
        }
    }

    [Fact]
    public async Task FindPrev_returns_the_storing_node_nearest_at_or_after_the_position()
    {
        await using var ring = await StartRingAsync();
        var ids = ring.Nodes.Select(n => n.Id).ToList();

        foreach (var node in ring.Nodes)
        {
            foreach (var position in ProbePositions(ring))
            {
                Assert.Equal(RingTestData.FirstAtOrAfter(ids, position), node.FindPrev(position)?.Id);
            }
        }
    }

    [Fact]
    public async Task Next_is_the_successor_of_every_node()
    {
        await using var ring = await StartRingAsync(4);
        var client = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();

        foreach (var node in ring.Nodes)
        {
            var others = ring.Storing.Where(n => n != node).Select(n => n.Id);
            var successor = others.MinBy(id => node.Position.DistanceTo(RingPosition.FromBase58(id)));
            Assert.Equal(successor, node.Next?.Id);
        }

        Assert.DoesNotContain(ring.Nodes, n => n.Next?.Id == client.Id); // a leeching node is nobody's successor
    }

    [Fact]
    public async Task Prev_is_the_predecessor_of_every_node()
    {
        await using var ring = await StartRingAsync(4);
        var client = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();

        foreach (var node in ring.Nodes)
        {
            var others = ring.Storing.Where(n => n != node).Select(n => n.Id);
            var predecessor = others.MinBy(id => RingPosition.FromBase58(id).DistanceTo(node.Position));
            Assert.Equal(predecessor, node.Prev?.Id);
        }

        Assert.DoesNotContain(ring.Nodes, n => n.Prev?.Id == client.Id);
    }

    // ---- RetrieveAsync -------------------------------------------------------------------------------------------

    [Fact]
    public async Task RetrieveAsync_returns_what_the_owner_of_one_position_holds()
    {
        await using var ring = await StartRingAsync();
        await ring.Nodes[0].SetAsync("single", "value");
        var positions = RingTestData.Positions("single");

        foreach (var node in ring.Nodes)
        {
            for (var i = 0; i < 5; i++)
            {
                var result = await node.RetrieveAsync((HashMethod)i, positions[i]);
                Assert.Equal(MsgValue.Str("value"), result.Value);
                Assert.Equal(node.Find(positions[i])!.Id == node.Id ? 0 : 1, result.Hops); // every node is connected to both others
            }
        }

        Assert.Equal(MsgValue.Nil, (await ring.Nodes[1].RetrieveAsync(HashMethod.Sha256, RingTestData.Positions("other")[2])).Value);
    }

    [Fact]
    public async Task RetrieveAsync_throws_ChordTimeoutException_when_the_owner_never_answers()
    {
        await using var ring = await StartPy2pRingAsync(configure: o => o.RequestTimeout = TimeSpan.FromSeconds(2));
        await using var silent = await StartSilentOwnerAsync(ring);
        var ids = ring.Nodes.Select(n => n.Id).Append(silent.Id).ToList();
        var position = Enumerable.Range(0, 1000).Select(i => RingTestData.Positions($"unanswered-{i}")[2]).First(p => RingTestData.OwnerOf(ids, p) == silent.Id);

        // The outer deadline only turns a hang into a failure (before the fix, a lost answer was waited for ever).
        await Assert.ThrowsAsync<ChordTimeoutException>(() => ring.Nodes[0].RetrieveAsync(HashMethod.Sha256, position).WaitAsync(TimeSpan.FromSeconds(60)));
    }

    // ---- membership ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task JoinAsync_and_UnjoinAsync_flip_IsLeeching_and_the_ring_learns_it()
    {
        await using var ring = await StartRingAsync();
        var node = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();
        Assert.True(node.IsLeeching);
        Assert.False(node.Self.IsStoring);

        await node.JoinAsync();
        Assert.False(node.IsLeeching);
        await Eventually.UntilAsync(() => ring.Nodes.Where(n => n != node).All(n => n.Members.Any(m => m.Id == node.Id && m.IsStoring)), Wait,
            "the ring to learn the node is storing");

        await node.UnjoinAsync();
        Assert.True(node.IsLeeching);
        await Eventually.UntilAsync(() => ring.Nodes.Where(n => n != node).All(n => n.Members.Any(m => m.Id == node.Id && !m.IsStoring)), Wait,
            "the ring to learn the node is leeching again");
    }

    [Fact]
    public async Task StoringPeers_lists_the_connected_storing_nodes_and_not_the_leeching_ones()
    {
        await using var ring = await StartRingAsync();
        var client = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();
        var storing = ring.Storing.Select(n => n.Id).ToHashSet();

        await Eventually.UntilAsync(() => client.StoringPeers.Select(m => m.Id).ToHashSet().SetEquals(storing), Wait,
            "the client to list the three storing nodes");
        foreach (var node in ring.Storing)
        {
            Assert.True(node.StoringPeers.Select(m => m.Id).ToHashSet().SetEquals(storing.Where(id => id != node.Id)),
                $"node {RingTestData.Short(node.Id)} lists {string.Join(", ", node.StoringPeers.Select(m => RingTestData.Short(m.Id)))}");
        }
    }

    [Fact]
    public async Task ConnectAsync_by_host_and_port_or_by_address_returns_the_peer_after_its_handshake()
    {
        await using var ring = await StartRingAsync();
        await using var first = new RingNode(new RingOptions());
        await using var second = new RingNode(new RingOptions());
        await first.StartAsync();
        await second.StartAsync();

        var byHost = await first.ConnectAsync(ring.Nodes[1].Mesh.Address.Host, ring.Nodes[1].Mesh.Address.Port);
        var byAddress = await second.ConnectAsync(ring.Nodes[2].Mesh.Address);

        Assert.Equal(ring.Nodes[1].Id, byHost.Id);
        Assert.Equal(ring.Nodes[2].Id, byAddress.Id);
        await Eventually.UntilAsync(() => first.StoringPeers.Any(m => m.Id == ring.Nodes[1].Id) && second.StoringPeers.Any(m => m.Id == ring.Nodes[2].Id),
            Wait, "the new nodes to learn their seeds are storing");
        await ring.Nodes[0].SetAsync("through-seed", "value");
        Assert.Equal(MsgValue.Str("value"), await first.GetAsync("through-seed"));
        Assert.Equal(MsgValue.Str("value"), await second.GetAsync("through-seed"));
    }

    [Fact]
    public async Task DisconnectLeastEfficient_returns_false_when_every_connection_is_a_neighbour()
    {
        await using var ring = await StartRingAsync();
        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Mesh.Peers.Count == 2), Wait, "each node to hold connections to both others");

        foreach (var node in ring.Nodes)
        {
            Assert.False(node.DisconnectLeastEfficient());
        }

        Assert.All(ring.Nodes, n => Assert.All(n.Mesh.Peers, p => Assert.False(p.IsClosed)));
    }

    [Fact]
    public async Task DisconnectLeastEfficient_closes_a_connection_that_is_neither_neighbour_nor_finger()
    {
        await using var ring = await StartRingAsync();
        var client = await ring.AddNodeAsync(join: false);
        var node = ring.Nodes[0];
        await Eventually.UntilAsync(() => node.Mesh.GetPeer(client.Id) is not null, Wait, "node 0 to hold the client's connection");
        var clientConnection = node.Mesh.GetPeer(client.Id)!;
        var ringConnections = node.Mesh.Peers.Where(p => p != clientConnection).ToList();

        Assert.True(node.DisconnectLeastEfficient());

        await Eventually.UntilAsync(() => clientConnection.IsClosed, Wait, "the client's connection to close");
        Assert.All(ringConnections, p => Assert.False(p.IsClosed, $"the ring connection {p} was closed instead"));
    }

    // ---- events ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task KeyAdded_is_raised_on_every_node()
    {
        await using var ring = await StartRingAsync();
        var added = new ConcurrentDictionary<RingNode, ConcurrentBag<string>>();
        foreach (var node in ring.Nodes)
        {
            var seen = added.GetOrAdd(node, _ => []);
            node.KeyAdded += (_, e) => seen.Add(Encoding.UTF8.GetString(e.Key.Span));
        }

        await ring.Nodes[1].SetAsync("event", "value");
        await ring.Nodes[2].SetAsync("event", "again"); // not a new key: no second event

        await Eventually.UntilAsync(() => ring.Nodes.All(n => added[n].Contains("event")), Wait, "every node to raise KeyAdded");
        Assert.All(ring.Nodes, n => Assert.Single(added[n]));
    }

    [Fact]
    public async Task KeyDeleted_is_raised_on_every_node()
    {
        await using var ring = await StartRingAsync();
        var deleted = new ConcurrentDictionary<RingNode, ConcurrentBag<string>>();
        foreach (var node in ring.Nodes)
        {
            var seen = deleted.GetOrAdd(node, _ => []);
            node.KeyDeleted += (_, e) => seen.Add(Encoding.UTF8.GetString(e.Key.Span));
        }

        await ring.Nodes[0].SetAsync("event", "value");
        await Eventually.UntilAsync(() => ring.Nodes.All(n => Knows(n, "event")), Wait, "every node to learn the key");
        Assert.All(ring.Nodes, n => Assert.Empty(deleted[n]));

        await ring.Nodes[2].DeleteAsync("event");

        await Eventually.UntilAsync(() => ring.Nodes.All(n => deleted[n].Contains("event")), Wait, "every node to raise KeyDeleted");
        Assert.All(ring.Nodes, n => Assert.Single(deleted[n]));
    }

    // ---- typed values --------------------------------------------------------------------------------------------

    private static readonly TypedProfile Ada = new("Ada", 36, ["maths", "engines"], new TypedAddress("London", 12345));

    [Fact]
    public async Task Typed_SetAsync_and_GetAsync_round_trip_an_object()
    {
        await using var ring = await StartRingAsync();

        await ring.Nodes[0].SetAsync("typed", Ada);
        var read = await ring.Nodes[2].GetAsync<TypedProfile>("typed");

        Assert.Equal(Ada.Name, read.Name);
        Assert.Equal(Ada.Age, read.Age);
        Assert.Equal(Ada.Tags, read.Tags);
        Assert.Equal(Ada.Home, read.Home);
    }

    [Fact]
    public async Task Typed_values_are_stored_as_maps_with_str_keys_as_a_py2p_node_reads_a_dict()
    {
        await using var ring = await StartRingAsync();

        await ring.Nodes[0].SetAsync("typed", Ada);
        var raw = await ring.Nodes[1].GetAsync("typed");

        var expected = MsgValue.Map(
            ("Name", "Ada"),
            ("Age", 36L),
            ("Tags", MsgValue.Array("maths", "engines")),
            ("Home", MsgValue.Map(("City", "London"), ("Zip", 12345L))));
        Assert.Equal(expected, raw);
        Assert.All(raw.AsMap(), e => Assert.Equal(MsgKind.Str, e.Key.Kind));
        Assert.True(raw.TryGetValue("Home", out var home));
        Assert.All(home.AsMap(), e => Assert.Equal(MsgKind.Str, e.Key.Kind));
    }
}
