using System.Collections.Immutable;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Wire;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// Our ring with a node that speaks only py2p 0.7 (<see cref="LegacyPy2pPeer"/>): the message forms it reads and
/// sends are those of the reference (PROTOCOL.md §5 and the vectors), and our extensions degrade as §6 says.
/// </summary>
public class RingLegacyInteropTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static ImmutableArray<MsgValue> Vector(string name) =>
        [.. WireVectors.Payload(WireVectors.Section("messages").GetProperty(name).GetProperty("payload"))];

    /// <summary>A 3-node TCP ring plus one storing py2p node connected to every ring node (it learns peers only from direct connections).</summary>
    private static async Task<(RingTestCluster Ring, LegacyPy2pPeer Legacy)> StartMixedRingAsync(bool answerRetrieves = true)
    {
        // The py2p interop opt-in; entries counted exactly, so no placement copies.
        var ring = await RingTestCluster.StartAsync(3, configure: o =>
        {
            o.KeepPlacementCopies = false;
            o.Mesh.Security = MeshSecurity.AllowUnauthenticated;
        });
        var legacy = await LegacyPy2pPeer.StartOwningAsync([.. ring.Nodes.Select(n => n.Id)], 0.3, storing: true, answerRetrieves);
        foreach (var node in ring.Nodes)
        {
            await legacy.ConnectAsync(node);
        }

        await Eventually.UntilAsync(
            () => ring.Nodes.All(n => n.StoringPeers.Any(m => m.Id == legacy.Id)) && legacy.StoringPeerIds.Count == ring.Nodes.Count,
            Wait, "the ring and the py2p node to know each other as storing");
        return (ring, legacy);
    }

    private static List<string> StoringIds(RingTestCluster ring, LegacyPy2pPeer legacy) => [.. ring.Nodes.Select(n => n.Id).Append(legacy.Id)];

    /// <summary>Keys of which the py2p node owns a number of positions <paramref name="wanted"/> accepts.</summary>
    private static List<string> KeysOwnedByLegacy(List<string> ids, LegacyPy2pPeer legacy, string prefix, Func<int, bool> wanted, int count) =>
        [.. Enumerable.Range(0, 100_000).Select(i => $"{prefix}-{i}").Where(k => wanted(RingTestData.PositionsOwnedBy(ids, k, legacy.Id))).Take(count)];

    private static IEnumerable<(HashMethod Method, RingPosition Position)> LegacyPositions(List<string> ids, LegacyPy2pPeer legacy, string key) =>
        RingTestData.Positions(key).Select((p, i) => ((HashMethod)i, p)).Where(x => RingTestData.OwnerOf(ids, x.p) == legacy.Id);

    [Fact]
    public async Task Our_writes_reach_a_py2p_owner_in_the_reference_packet_forms_and_reads_through_it_return_the_majority()
    {
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var keys = KeysOwnedByLegacy(ids, legacy, "mixed", c => c is 1 or 2, 20); // 3+ positions stay on our nodes: the writes succeed
        var storeVector = Vector("store");

        for (var i = 0; i < keys.Count; i++)
        {
            await ring.Nodes[i % 3].SetAsync(keys[i], $"value-{i}");
        }

        var expected = keys.SelectMany((k, i) => LegacyPositions(ids, legacy, k).Select(x => (x.Method, x.Position, Value: MsgValue.Str($"value-{i}")))).ToList();
        await Eventually.UntilAsync(() => expected.All(x => legacy.Stored(x.Method, x.Position) == x.Value), Wait, "the py2p node to hold its positions");
        Assert.Equal(expected.Count, legacy.StoredCount);
        foreach (var (method, position, value) in expected)
        {
            var store = Assert.Single(legacy.StoresAt(method, position));
            Assert.Equal(storeVector.Take(4).Select(v => v.Kind), store.Take(4).Select(v => v.Kind)); // [int, bin, bin, str] as the vector
            Assert.Equal(MsgValue.From((long)SubFlag.Store), store[0]);
            Assert.Equal(MsgValue.BinAscii(method.WireName()), store[1]);
            Assert.Equal(MsgValue.BinAscii(position.ToBase58()), store[2]);
            Assert.Equal(value, store[3]);
        }

        for (var i = 0; i < keys.Count; i++)
        {
            foreach (var node in ring.Nodes)
            {
                Assert.Equal(MsgValue.Str($"value-{i}"), await node.GetAsync(keys[i]));
            }
        }
    }

    [Fact]
    public async Task Our_nodes_send_a_py2p_node_chord_meta_and_notify_in_exactly_the_reference_form()
    {
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;

        var key = KeysOwnedByLegacy(StoringIds(ring, legacy), legacy, "announced", c => c <= 2, 1).Single(); // the write succeeds

        await ring.Nodes[1].SetAsync(key, "value");

        await Eventually.UntilAsync(() => legacy.Keys.Contains(key), Wait, "the py2p node to learn the key from a notify");
        var payloads = legacy.Received;
        foreach (var node in ring.Nodes)
        {
            Assert.Contains(payloads, r => r.From == node.Id && r.Payload.SequenceEqual(Vector("chord_meta_joined")));
        }

        var notify = payloads.Where(r => r.Payload[0] == MsgValue.From((long)SubFlag.Notify)).Select(r => r.Payload).ToList();
        Assert.Contains(notify, p => p.SequenceEqual([MsgValue.From((long)SubFlag.Notify), MsgValue.BinAscii(key)]));
        Assert.All(notify, p => Assert.Equal(2, p.Length)); // notify takes no trailing packets (§6)
    }

    [Fact]
    public async Task Stores_a_py2p_node_routes_to_our_owners_are_readable_through_our_nodes()
    {
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var entries = RingTestData.Entries("from-py2p", 20);

        foreach (var (key, value) in entries)
        {
            await legacy.SetAsync(key, value); // [11, method, pos, value] to each position's owner, as py2p sends it
        }

        var placed = entries.SelectMany(e => RingTestData.Positions(e.Key).Select((p, i) => (Method: (HashMethod)i, Position: p, e.Value))).ToList();
        await Eventually.UntilAsync(() => placed.All(x =>
        {
            var owner = RingTestData.OwnerOf(ids, x.Position);
            return owner == legacy.Id
                ? legacy.Stored(x.Method, x.Position) == x.Value
                : ring.Nodes.Single(n => n.Id == owner).DumpData(x.Position, x.Position)[x.Method].GetValueOrDefault(x.Position) == x.Value;
        }), Wait, "every owner to hold what the py2p node stored");

        foreach (var node in ring.Nodes)
        {
            await RingTestData.AssertAllReadBackAsync([node], entries, "values stored by the py2p node");
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Keys.Count == entries.Count), Wait, "our nodes to learn the keys from py2p's notify");
    }

    [Fact]
    public async Task Answers_of_a_py2p_node_match_our_requests_by_method_and_position_although_they_carry_no_request_id()
    {
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var key = KeysOwnedByLegacy(ids, legacy, "legacy-majority", c => c >= 3, 1).Single();
        await legacy.SetAsync(key, "py2p-value");
        await Eventually.UntilAsync(() => LegacyPositions(ids, legacy, key).All(x => legacy.Stored(x.Method, x.Position) is not null), Wait,
            "the py2p node to hold its positions");

        // The quorum needs the py2p node's answers: they were matched.
        foreach (var node in ring.Nodes)
        {
            Assert.Equal(MsgValue.Str("py2p-value"), await node.GetAsync(key));
        }

        // Several requests for one (method, position) in flight at once are all answered.
        var (method, position) = LegacyPositions(ids, legacy, key).First();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ring.Nodes[0].RetrieveAsync(method, position)));
        Assert.All(results, r => Assert.Equal(MsgValue.Str("py2p-value"), r.Value));

        // What the py2p node received and sent are the reference forms: retrieve read as 3 packets, retrieved exactly 4.
        var retrieveVector = Vector("retrieve");
        Assert.All(legacy.RetrievesAt(method, position), p => Assert.Equal(retrieveVector.Select(v => v.Kind), p.Take(3).Select(v => v.Kind)));
        var answers = legacy.Sent.Where(m => m.Is(SubFlag.Retrieved)).ToList();
        Assert.NotEmpty(answers);
        Assert.All(answers, m => Assert.Equal(4, m.Payload.Length));
        Assert.All(legacy.Sent, m => Assert.True(m.SubFlagValue < 0x30, $"the py2p stand-in sent an extension: {m}"));
    }

    [Fact]
    public async Task Writes_owned_by_a_py2p_node_count_once_a_retrieve_after_the_store_returns_the_written_value()
    {
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var key = KeysOwnedByLegacy(ids, legacy, "confirmed", c => c >= 3, 1).Single();

        // py2p handles a connection's messages in order: the retrieve sent after each store is answered after it,
        // with the written value, which proves the store applied. So a py2p majority acknowledges the write.
        await ring.Nodes[0].SetAsync(key, "value");
        Assert.All(LegacyPositions(ids, legacy, key), x => Assert.Equal(MsgValue.Str("value"), legacy.Stored(x.Method, x.Position)));
        Assert.All(LegacyPositions(ids, legacy, key), x => Assert.NotEmpty(legacy.RetrievesAt(x.Method, x.Position)));
        Assert.Equal(MsgValue.Str("value"), await ring.Nodes[1].GetAsync(key));
        await Eventually.UntilAsync(() => legacy.Keys.Contains(key), Wait, "the write to be announced to the py2p node (notify)");

        // The delete is applied and acknowledged the same way, and the key is gone for every reader.
        await ring.Nodes[2].DeleteAsync(key);
        Assert.All(LegacyPositions(ids, legacy, key), x => Assert.Null(legacy.Stored(x.Method, x.Position)));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[0].GetAsync(key));
    }

    [Fact]
    public async Task Writes_owned_by_a_py2p_node_that_answers_no_retrieve_are_unacknowledged_and_a_py2p_majority_fails_the_write()
    {
        var (ring, legacy) = await StartMixedRingAsync(answerRetrieves: false);
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var key = KeysOwnedByLegacy(ids, legacy, "unacked", c => c >= 3, 1).Single();

        // A py2p owner that answers nothing confirms nothing: with three or more positions on it the write fails
        // clearly (at the version query, or counting acknowledgements), never reported done.
        var e = await Assert.ThrowsAsync<ChordWriteException>(() => ring.Nodes[0].SetAsync(key, "value"));
        Assert.True(e.Acknowledged < 3, e.Message);
        Assert.Contains("of 5 positions", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_of_a_py2p_only_ring_sends_the_vector_messages_byte_for_byte()
    {
        await using var legacy = await LegacyPy2pPeer.StartAsync(storing: true);
        await using var client = new RingNode(new RingOptions { RequestTimeout = TimeSpan.FromSeconds(5), Mesh = { Security = MeshSecurity.AllowUnauthenticated } });
        await client.StartAsync();
        await client.ConnectAsync(legacy.Mesh.Address);
        await Eventually.UntilAsync(() => client.StoringPeers.Any(m => m.Id == legacy.Id), Wait, "the client to learn the py2p node is storing");
        var sha1 = RingTestData.Positions("test")[0];

        // The vectors' key is "test", their value "world". The py2p node owns all positions; it confirms each store
        // by answering the retrieve sent after it.
        await client.SetAsync("test", "world");
        Assert.Equal(5, legacy.StoredCount);
        Assert.Equal(Vector("store"), legacy.StoresAt(HashMethod.Sha1, sha1).Single().Take(4));

        Assert.Equal(MsgValue.Str("world"), await client.GetAsync("test"));
        Assert.Equal(Vector("retrieve"), legacy.RetrievesAt(HashMethod.Sha1, sha1)[^1].Take(3));
        Assert.Contains(legacy.Sent, m => m.Payload.SequenceEqual(Vector("retrieved")));

        await client.DeleteAsync("test");
        Assert.Equal(0, legacy.StoredCount);
        Assert.Equal(Vector("store_delete"), legacy.StoresAt(HashMethod.Sha1, sha1)[1].Take(4));

        // A delta's result cannot be confirmed (py2p merges at the owner and says nothing): unacknowledged.
        await Assert.ThrowsAsync<ChordWriteException>(() => client.ApplyDeltaAsync("test", MsgValue.Map(("a", 1L))));
        await Eventually.UntilAsync(() => legacy.StoredCount == 5, Wait, "the py2p node to merge the five deltas");
        var delta = legacy.Received.Select(r => r.Payload).Single(p => p[0] == MsgValue.From((long)SubFlag.Delta) && p[2] == MsgValue.BinAscii(sha1.ToBase58()));
        Assert.Equal(Vector("delta"), delta.Take(4));
    }

    [Fact]
    public async Task Placement_copies_never_go_to_a_py2p_node()
    {
        // Placement copies on (the default): a py2p node does not own a copy, so it would forward it as its own
        // unversioned store and erase the owner's version.
        var ring = await RingTestCluster.StartAsync(3, configure: o => o.Mesh.Security = MeshSecurity.AllowUnauthenticated);
        await using var _ = ring;
        await using var legacy = await LegacyPy2pPeer.StartOwningAsync([.. ring.Nodes.Select(n => n.Id)], 0.3, storing: true);
        foreach (var node in ring.Nodes)
        {
            await legacy.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.StoringPeers.Any(m => m.Id == legacy.Id)), Wait, "the ring to know the py2p node as storing");
        var ids = StoringIds(ring, legacy);
        var keys = KeysOwnedByLegacy(ids, legacy, "copies", c => c == 0, 60);
        foreach (var key in keys)
        {
            await ring.Nodes[0].SetAsync(key, "v");
        }

        try
        {
            await Eventually.UntilAsync(() => ring.Nodes.Sum(n => n.GetStatistics().PlacementCopies) > 0, Wait, "some placement copies to be made");
        }
        catch (Xunit.Sdk.XunitException e)
        {
            // Say how the nodes saw the ring (it failed once in a loaded CI run, never alone).
            var views = string.Join("; ", ring.Nodes.Select(n => $"{RingTestData.Short(n.Id)}: storing {string.Join(",", n.StoringPeers.Select(m => RingTestData.Short(m.Id)))}, " +
                $"entries {n.StoredCount}, register keys {keys.Count(k => n.RegisterServes(RingNode.KeyBytes(k)))}/{keys.Count}"));
            throw new Xunit.Sdk.XunitException($"{e.Message} Views: {views}; py2p node {RingTestData.Short(legacy.Id)}.");
        }

        Assert.Equal(0, legacy.StoredCount);
        Assert.DoesNotContain(legacy.Received, r => r.Payload.Length > 8 && r.Payload[8] == MsgValue.Str("replica"));
    }

    [Fact]
    public async Task Keys_a_py2p_node_wrote_stay_readable_after_it_closes_without_unjoin()
    {
        // py2p's close() hands nothing off and py2p keeps no replicas; its stores carry no key and no version. Our
        // holders learn the keys from the notify broadcast and re-create the lost positions from the survivors.
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        // Three or four positions on it: lost with it unless re-created. (All five on it: nothing survives to
        // re-create from; py2p itself keeps no replicas.)
        var heavy = KeysOwnedByLegacy(ids, legacy, "closed-heavy", n => n is 3 or 4, 10);
        var light = KeysOwnedByLegacy(ids, legacy, "closed-light", n => n is >= 1 and < 3, 20);
        var entries = heavy.Concat(light).ToDictionary(k => k, k => MsgValue.Str("v-" + k));
        foreach (var (key, value) in entries)
        {
            await legacy.SetAsync(key, value);
        }


        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Keys.Count == entries.Count), Wait, "our nodes to learn the keys from py2p's notify");
        await RingTestData.AssertAllReadBackAsync([ring.Nodes[0]], entries, "before the py2p node closed");

        await legacy.DisposeAsync(); // close(): no unjoin, no handoff

        // Each node finds it gone on its own (a closed connection, a refused dial), then repairs: wait for the reads.
        var readable = new Dictionary<string, int>();
        await Eventually.UntilAsync(async () =>
        {
            foreach (var node in ring.Nodes)
            {
                var count = 0;
                foreach (var (key, value) in entries)
                {
                    count += await node.GetOrDefaultAsync(RingNode.KeyBytes(key), MsgValue.Nil) == value ? 1 : 0;
                }

                readable[RingTestData.Short(node.Id)] = count;
            }

            return readable.Values.All(c => c == entries.Count);
        }, Wait, "every key to be readable through every node after the py2p node closed");

        output.WriteLine($"after the py2p node closed: readable per node {string.Join(", ", readable.Select(r => $"{r.Key} {r.Value}/{entries.Count}"))}; " +
            $"{heavy.Count} keys had 3 or 4 positions on it; re-created positions {string.Join(", ", ring.Nodes.Select(n => n.GetStatistics().CrashRepairs))}");
    }

    [Fact]
    public async Task A_delete_never_sends_a_py2p_owner_the_delete_of_an_entry_it_does_not_hold()
    {
        // py2p's `del` of an absent entry raises KeyError and drops the connection; the stand-in does the same.
        var (ring, legacy) = await StartMixedRingAsync();
        await using var _ = ring;
        await using var __ = legacy;
        var ids = StoringIds(ring, legacy);
        var key = KeysOwnedByLegacy(ids, legacy, "absent-at-py2p", n => n is 1 or 2, 1).Single();
        await ring.Nodes[0].SetAsync(key, "v");
        foreach (var (method, position) in LegacyPositions(ids, legacy, key))
        {
            await Eventually.UntilAsync(() => legacy.Stored(method, position) is not null, Wait, "the py2p owner to hold its position");
            legacy.ForgetForTest(method, position); // lost there (py2p keeps no replicas)
        }

        await ring.Nodes[0].DeleteAsync(key);

        Assert.Equal(0, legacy.KeyErrorDisconnects);
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync(key));
        Assert.All(ring.Nodes, n => Assert.NotNull(n.Mesh.GetPeer(legacy.Id)));
    }
}
