using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// No message from a py2p node can poison a key's register (issue 13, part 3): versions are taken only from our own
/// nodes, so a store that carries a forged version at the top of the range is a plain py2p store, and an honest
/// quorum write still overwrites and deletes the key.
/// </summary>
public sealed class HostileVersionTests
{
    private static MsgValue[] ForgedStore(HashMethod method, RingPosition position, MsgValue value, byte[] key) =>
    [
        (long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()), value,
        "forged.1", 1, new EntryVersion(EntryVersion.MaxCounter, "zzzzzzzz").ToMsgValue(), MsgValue.Bin(key),
    ];

    /// <summary>
    /// Waits until every position holds <paramref name="value"/>: a write returns at three accepts, and a late accept
    /// landing after a forged store would replace it (it is versioned, the forgery is not).
    /// </summary>
    private static Task EveryPositionHoldsAsync(RingTestCluster ring, RingPosition[] positions, MsgValue value) =>
        Eventually.UntilAsync(() => KeyHashes.Methods.All(m => ring.Nodes.Any(n => n.PeekLocalForTest(m, positions[(int)m])?.Value == value)),
            "every position to hold the honest write before the forgery");

    /// <summary>The py2p peer's open connection to a node (one that lost a simultaneous-dial race is closed and replaced).</summary>
    private static async Task<MeshPeer> PeerAsync(LegacyPy2pPeer hostile, string id)
    {
        MeshPeer? peer = null;
        await Eventually.UntilAsync(() => (peer = hostile.Mesh.GetPeer(id)) is { IsClosed: false }, "the py2p peer to hold an open connection to the owner");
        return peer!;
    }

    [Fact]
    public async Task A_store_with_a_forged_top_version_from_a_py2p_peer_takes_no_version_and_honest_writes_overwrite_and_delete_it()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.Mesh.Security = MeshSecurity.AllowUnauthenticated);
        await using var hostile = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await hostile.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.Any(m => m.Id == hostile.Id)), "every node to know the py2p peer");
        const string key = "victim";
        var keyBytes = RingNode.KeyBytes(key);
        await ring.Nodes[0].SetAsync(key, "honest-1");

        // A forged store straight to the owner of every position.
        var positions = KeyHashes.All(keyBytes);
        await EveryPositionHoldsAsync(ring, positions, MsgValue.Str("honest-1"));
        foreach (var method in KeyHashes.Methods)
        {
            var owner = ring.Nodes.Single(n => n.Id == ring.Nodes[0].Find(positions[(int)method])!.Id);
            await (await PeerAsync(hostile, owner.Id)).WhisperAsync(ForgedStore(method, positions[(int)method], "poison", keyBytes));
        }

        await Eventually.UntilAsync(
            () => KeyHashes.Methods.All(m => ring.Nodes.Any(n => n.PeekLocalForTest(m, positions[(int)m]) is { } held && held.Value.Equals(MsgValue.Str("poison")))),
            "the forged stores to arrive");

        // They were taken as py2p stores: the value, no version (so nothing at the top of the range anywhere).
        foreach (var method in KeyHashes.Methods)
        {
            foreach (var node in ring.Nodes)
            {
                if (node.PeekLocalForTest(method, positions[(int)method]) is { } held)
                {
                    Assert.True(held.Version is null || held.Version.Value.Counter < 1_000, $"{node.Id} holds version {held.Version} at {method}");
                }
            }
        }

        // An honest write overwrites it through the register, and a delete deletes it.
        await ring.Nodes[1].SetAsync(key, "honest-2");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal("honest-2", (await node.GetAsync(key)).AsString());
        }

        var versioned = await ring.Nodes[2].GetVersionedAsync(key);
        Assert.True(versioned.Version.Counter < 1_000);
        await ring.Nodes[2].DeleteAsync(key);
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[0].GetAsync(key));
    }

    [Fact]
    public async Task One_forged_position_leaves_reads_with_the_honest_value_and_the_repair_does_not_spread_it()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o =>
        {
            o.AntiEntropyInterval = TimeSpan.FromMilliseconds(200);
            o.Mesh.Security = MeshSecurity.AllowUnauthenticated;
        });
        await using var hostile = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await hostile.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.Any(m => m.Id == hostile.Id)), "every node to know the py2p peer");
        const string key = "one-forged";
        var keyBytes = RingNode.KeyBytes(key);
        await ring.Nodes[0].SetAsync(key, "honest");
        var position = KeyHashes.All(keyBytes)[0];
        var owner = ring.Nodes.Single(n => n.Id == ring.Nodes[0].Find(position)!.Id);
        await EveryPositionHoldsAsync(ring, KeyHashes.All(keyBytes), MsgValue.Str("honest"));
        await (await PeerAsync(hostile, owner.Id)).WhisperAsync(ForgedStore(HashMethod.Sha256, position, "poison", keyBytes));
        await Eventually.UntilAsync(() => owner.PeekLocalForTest(HashMethod.Sha256, position)?.Value.Equals(MsgValue.Str("poison")) == true, "the forged store to arrive");

        // Anti-entropy sweeps (every 200 ms here) run while reads go on; the forged value never gains a version or a
        // second position, and every read returns the honest value.
        for (var round = 0; round < 10; round++)
        {
            foreach (var node in ring.Nodes)
            {
                Assert.Equal("honest", (await node.GetAsync(key)).AsString());
            }
        }

        var poisoned = KeyHashes.Methods.Count(m => ring.Nodes.Any(n => n.PeekLocalForTest(m, KeyHashes.All(keyBytes)[(int)m]) is { } held
            && held.Value.Equals(MsgValue.Str("poison"))));
        Assert.True(poisoned <= 1, $"the forged value spread to {poisoned} positions");
        Assert.All(ring.Nodes, n => Assert.False(n.PeekLocalForTest(HashMethod.Sha256, position) is { Version: { Counter: >= 1_000 } }));
    }

    public static TheoryData<string> PoisonVersions() => ["top of 2^63", "negative", "huge writer", "tombstone with a version", "top of the range"];

    private static MsgValue PoisonVersion(string kind) => kind switch
    {
        "top of 2^63" => MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz")),
        "negative" => MsgValue.Array(-1L, MsgValue.BinAscii("zzzz")),
        "huge writer" => MsgValue.Array(5L, MsgValue.BinAscii(new string('z', 4096))),
        _ => new EntryVersion(EntryVersion.HeadroomStart, "zzzzzzzz").ToMsgValue(),
    };

    [Theory]
    [MemberData(nameof(PoisonVersions))]
    public async Task Each_poison_version_from_a_py2p_peer_followed_by_an_honest_write_leaves_the_honest_value(string poison)
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.Mesh.Security = MeshSecurity.AllowUnauthenticated);
        await using var hostile = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await hostile.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.Any(m => m.Id == hostile.Id)), "every node to know the py2p peer");
        var key = $"poisoned-{poison.Replace(' ', '-')}";
        var keyBytes = RingNode.KeyBytes(key);
        await ring.Nodes[0].SetAsync(key, "before");
        var value = poison == "tombstone with a version" ? MsgValue.Nil : MsgValue.Str("poison");
        var positions = KeyHashes.All(keyBytes);
        await EveryPositionHoldsAsync(ring, positions, MsgValue.Str("before"));
        foreach (var method in KeyHashes.Methods)
        {
            var owner = ring.Nodes[0].Find(positions[(int)method])!.Id;
            await (await PeerAsync(hostile, owner)).WhisperAsync(
                (long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(positions[(int)method].ToBase58()), value,
                "forged.1", 1, PoisonVersion(poison), MsgValue.Bin(keyBytes));
        }

        // Wait until every forged store was handled (each owner saw it: the value is py2p's now, or the delete took it).
        await Eventually.UntilAsync(() => KeyHashes.Methods.All(m => ring.Nodes.Any(n => n.PeekLocalForTest(m, positions[(int)m]) is { } held
            && (value.IsNil ? !held.Value.Equals(MsgValue.Str("before")) : held.Value.Equals(value)))), "the forged stores to arrive");

        // The honest write after it wins, through every node, and no position keeps a version from the poison.
        await ring.Nodes[1].SetAsync(key, "honest");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal("honest", (await node.GetAsync(key)).AsString());
        }

        Assert.All(ring.Nodes, n => Assert.All(KeyHashes.Methods, m =>
            Assert.False(n.PeekLocalForTest(m, positions[(int)m]) is { Version: { } v } && (v.Counter >= 1_000 || v.Writer.StartsWith("zzzz", StringComparison.Ordinal)))));
    }

    [Fact]
    public async Task Refused_versions_from_one_py2p_peer_are_logged_once_per_interval_and_the_node_keeps_serving()
    {
        var logs = new LogCapture();
        await using var node = new RingNode(new RingOptions { Mesh = { Security = MeshSecurity.AllowUnauthenticated } }, logs);
        await node.StartAsync();
        await node.JoinAsync();
        await using var hostile = await LegacyPy2pPeer.StartAsync(storing: false);
        await hostile.ConnectAsync(node);
        await Eventually.UntilAsync(() => node.Members.Any(m => m.Id == hostile.Id), "the node to know the py2p peer");

        // Twenty forged stores in a row: each is taken as py2p's form, and one warning says so.
        var keyBytes = RingNode.KeyBytes("noisy");
        var position = KeyHashes.Position(HashMethod.Sha256, keyBytes);
        for (var i = 0; i < 20; i++)
        {
            await (await PeerAsync(hostile, node.Id)).WhisperAsync(ForgedStore(HashMethod.Sha256, position, MsgValue.Str($"forged-{i}"), keyBytes));
        }

        await Eventually.UntilAsync(() => node.PeekLocalForTest(HashMethod.Sha256, position)?.Value == MsgValue.Str("forged-19"), "the forged stores to be handled");
        var refused = logs.AtLeast(LogLevel.Warning).Where(e => e.Text.StartsWith("Refused from", StringComparison.Ordinal)).ToList();
        Assert.Single(refused);
        Assert.Contains(hostile.Id, refused[0].Text, StringComparison.Ordinal);

        await node.SetAsync("after", "still serving");
        Assert.Equal("still serving", (await node.GetAsync("after")).AsString());
    }

    /// <summary>Versions and ballots outside the range a version from the wire may take, by name.</summary>
    private static readonly (string Name, MsgValue Value)[] OutOfRange =
    [
        ("counter 2^63-1", MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz"))),
        ("counter -1", MsgValue.Array(-1L, MsgValue.BinAscii("zzzz"))),
        ("10 KB writer id", MsgValue.Array(5L, MsgValue.BinAscii(new string('z', 10 * 1024)))),
    ];

    [Fact]
    public async Task Out_of_range_versions_and_ballots_from_an_authenticated_peer_are_refused_counted_and_logged_once_and_an_honest_write_wins()
    {
        var logs = new LogCapture();
        await using var ring = await RingTestCluster.StartAsync(3, logs: logs);
        const string key = "authenticated-poison";
        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        await ring.Nodes[0].SetAsync(key, "before");

        // One peer that knows the cluster secret on each node: everything it sends is read as our nodes' messages are.
        await using var raws = await AuthenticatedPeers.ConnectAsync(ring);

        var good = new EntryVersion(1_000, "zzzz").ToMsgValue();
        var poisons = new List<(string What, Func<HashMethod, RingPosition, string, MsgValue[]> Payload)>();
        foreach (var (name, bad) in OutOfRange)
        {
            poisons.Add(($"store with version {name}", (m, pos, id) => [(long)SubFlag.Store, Method(m), Position(pos), "poison", id, 0L, bad, MsgValue.Bin(keyBytes)]));
            poisons.Add(($"prepare with ballot {name}", (m, pos, id) => [(long)RingSubFlag.Prepare, Method(m), Position(pos), id, 0L, bad, MsgValue.Bin(keyBytes)]));
            poisons.Add(($"accept with ballot {name}", (m, pos, id) => [(long)RingSubFlag.Accept, Method(m), Position(pos), "poison", id, 0L, bad, good, MsgValue.Bin(keyBytes), MsgValue.Nil]));
            poisons.Add(($"accept with version {name}", (m, pos, id) => [(long)RingSubFlag.Accept, Method(m), Position(pos), "poison", id, 0L, good, bad, MsgValue.Bin(keyBytes), MsgValue.Nil]));
            poisons.Add(($"accept with next ballot {name}", (m, pos, id) => [(long)RingSubFlag.Accept, Method(m), Position(pos), "poison", id, 0L, good, good, MsgValue.Bin(keyBytes), bad]));
        }

        // A delete (a tombstone) carrying a version: it must be in range like any other.
        poisons.Add(("tombstone with version counter 2^63-1", (m, pos, id) => [(long)SubFlag.Store, Method(m), Position(pos), MsgValue.Nil, id, 0L, OutOfRange[0].Value, MsgValue.Bin(keyBytes)]));

        var requestIds = new List<string>();
        var senders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (what, payload) in poisons)
        {
            var before = RefusedInputs(ring);
            foreach (var method in KeyHashes.Methods)
            {
                var position = positions[(int)method];
                var owner = ring.Nodes[0].Find(position)!.Id;
                var id = $"poison-{requestIds.Count}";
                requestIds.Add(id);
                senders.Add(owner);
                await raws[owner].SendMessageAsync(MainFlag.Whisper, payload(method, position, id));
            }

            // Each message is refused where it is read, at its position's owner: one count per message.
            await Eventually.UntilAsync(() => RefusedInputs(ring) == before + KeyHashes.Methods.Count, $"each {what} to be refused");
        }

        // A ping after them all: its pong comes after any answer the node sent them (a connection keeps order).
        foreach (var raw in raws.Values)
        {
            await raw.SendMessageAsync(MainFlag.Ping, (long)SubFlag.Ping, "after-the-poison");
            await raw.WaitForAsync(m => m.Type == MainFlag.Pong && Inbox.TextOf(m) == "after-the-poison", "the pong after the poison");
        }

        // Each was answered at once with a refusal that says why (ok false, the reason), not left to time out.
        var answers = raws.Values.SelectMany(r => r.Frames).Select(f => f.Message)
            .Where(m => m.SubFlagValue == (int)RingSubFlag.Ack && requestIds.Contains(m.Payload[1].AsString())).ToList();
        Assert.Equal(requestIds.Order(StringComparer.Ordinal), answers.Select(m => m.Payload[1].AsString()).Order(StringComparer.Ordinal));
        Assert.All(answers, m =>
        {
            Assert.False(m.Payload[3].AsBool());
            Assert.Contains("out of range", m.Payload[4].AsString(), StringComparison.Ordinal);
        });
        Assert.All(ring.Nodes, n => Assert.All(KeyHashes.Methods, m =>
            Assert.False(n.PeekLocalForTest(m, positions[(int)m]) is { } held && (held.Value.Equals(MsgValue.Str("poison")) || held.Version is { Counter: >= 1_000 }),
                $"{n.Id[..8]} holds {n.PeekLocalForTest(m, positions[(int)m])} at {m}")));

        // Logged once per peer per minute, however many it sent.
        foreach (var owner in senders)
        {
            var raw = raws[owner];
            Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Refused from " + raw.Id, StringComparison.Ordinal));
        }

        // The key is as it was: an honest write wins and reads back everywhere.
        Assert.Equal("before", (await ring.Nodes[2].GetAsync(key)).AsString());
        await ring.Nodes[1].SetAsync(key, "honest");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal("honest", (await node.GetAsync(key)).AsString());
        }
    }

    [Fact]
    public async Task A_store_at_the_largest_counter_the_wire_introduces_is_overwritten_by_honest_writes_and_one_beyond_the_headroom_is_refused()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        const string key = "parked-at-the-top";
        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        await ring.Nodes[0].SetAsync(key, "before");
        await using var raws = await AuthenticatedPeers.ConnectAsync(ring);

        // Every position of the key is parked at 2^52 (the largest counter a position takes from the wire
        // whatever it holds) by one of our nodes gone wrong: each owner applies it and says so.
        var parked = new EntryVersion(EntryVersion.HeadroomStart, "zzzz");
        foreach (var method in KeyHashes.Methods)
        {
            var position = positions[(int)method];
            var owner = ring.Nodes[0].Find(position)!.Id;
            var id = $"parked-{method}";
            await raws[owner].SendMessageAsync(MainFlag.Whisper,
                [(long)SubFlag.Store, Method(method), Position(position), "parked", id, 0L, parked.ToMsgValue(), MsgValue.Bin(keyBytes)]);
            var ack = await raws[owner].WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == id, $"the owner's answer to {id}");
            Assert.True(ack.Message.Payload[3].AsBool(), $"the owner applied {id}");
            Assert.Equal(parked, ring.Nodes.Single(n => n.Id == owner).PeekLocalForTest(method, position)!.Value.Version);
        }

        // Honest writes follow it, one step at a time, and a delete deletes it.
        await ring.Nodes[1].SetAsync(key, "honest");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal("honest", (await node.GetAsync(key)).AsString());
        }

        var written = await ring.Nodes[2].GetVersionedAsync(key);
        Assert.InRange(written.Version.Counter, EntryVersion.HeadroomStart + 1, EntryVersion.HeadroomStart + 10);
        await ring.Nodes[2].SetAsync(key, "honest-2");
        Assert.Equal("honest-2", (await ring.Nodes[0].GetAsync(key)).AsString());
        await ring.Nodes[0].DeleteAsync(key);
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync(key));

        // Above 2^52 a position takes a counter only within two of what it holds: a fresh key cannot be parked
        // higher (the store is refused, answered and counted).
        var fresh = RingNode.KeyBytes("beyond-the-headroom");
        var freshPositions = KeyHashes.All(fresh);
        var beyond = new EntryVersion(EntryVersion.HeadroomStart + EntryVersion.HeadroomStep + 1, "zzzz");
        var before = RefusedInputs(ring);
        foreach (var method in KeyHashes.Methods)
        {
            var owner = ring.Nodes[0].Find(freshPositions[(int)method])!.Id;
            await raws[owner].SendMessageAsync(MainFlag.Whisper,
                [(long)SubFlag.Store, Method(method), Position(freshPositions[(int)method]), "beyond", $"beyond-{method}", 0L, beyond.ToMsgValue(), MsgValue.Bin(fresh)]);
        }

        await Eventually.UntilAsync(() => RefusedInputs(ring) == before + KeyHashes.Methods.Count, "each store beyond the headroom to be refused");
        foreach (var method in KeyHashes.Methods)
        {
            // Answered as a refusal, with what the position holds (nothing: no version), so the sender learns at once.
            var owner = ring.Nodes[0].Find(freshPositions[(int)method])!.Id;
            var refusal = await raws[owner].WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == $"beyond-{method}", $"the refusal of beyond-{method}");
            Assert.False(refusal.Message.Payload[3].AsBool());
            Assert.Contains("headroom", refusal.Message.Payload[4].AsString(), StringComparison.Ordinal);
            Assert.True(refusal.Message.Payload[5].IsNil);
        }

        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync("beyond-the-headroom"));
    }

    [Fact]
    public async Task An_honest_write_refused_by_every_position_for_the_headroom_learns_from_their_answers_that_it_did_not_take_effect()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o =>
        {
            o.KeepPlacementCopies = false;
            o.RequestTimeout = TimeSpan.FromSeconds(5);
        });
        // A key none of whose positions the writer owns: its own positions would take its ballots without a frame,
        // and the headroom rule is for what comes from the wire.
        var (writer, key) = ring.NodeOwningNoPositionOf("refused-for-the-headroom");
        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        await writer.SetAsync(key, "before");

        // Parked at 2^52 at every position, then written by the writer above it: its next ballot, 2^52 + 2, is promised.
        await using (var raws = await AuthenticatedPeers.ConnectAsync(ring))
        {
            foreach (var method in KeyHashes.Methods)
            {
                var owner = ring.Nodes[0].Find(positions[(int)method])!.Id;
                await raws[owner].SendMessageAsync(MainFlag.Whisper,
                    [(long)SubFlag.Store, Method(method), Position(positions[(int)method]), "parked", $"parked-{method}", 0L,
                        new EntryVersion(EntryVersion.HeadroomStart, "zzzz").ToMsgValue(), MsgValue.Bin(keyBytes)]);
                var ack = await raws[owner].WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == $"parked-{method}", "the parked store's answer");
                Assert.True(ack.Message.Payload[3].AsBool());
            }
        }

        await writer.SetAsync(key, "honest");
        await EveryPositionHoldsAsync(ring, positions, MsgValue.Str("honest"));

        // Every position loses its state (no disk): above 2^52 none can take the writer's next ballot (more than 2
        // above nothing). Each says so; without the answers the writer could not know its accept did not land.
        foreach (var node in ring.Nodes)
        {
            foreach (var method in KeyHashes.Methods)
            {
                node.RemoveLocalForTest(method, positions[(int)method]);
            }
        }

        var refused = RefusedInputs(ring);
        var e = await Assert.ThrowsAsync<ChordWriteException>(() => writer.SetAsync(key, "after"));
        Assert.True(e.Message.Contains("It did not take effect", StringComparison.Ordinal), e.Message);
        Assert.Equal(0, e.Acknowledged);
        Assert.True(RefusedInputs(ring) >= refused + KeyHashes.Methods.Count, "every position refused the writer's accept");
        Assert.All(ring.Nodes, n => Assert.All(KeyHashes.Methods, m => Assert.Null(n.PeekLocalForTest(m, positions[(int)m]))));
    }

    /// <summary>What the owner of each of the key's positions holds (value, version, ballots, marks), by method.</summary>
    private static string[] OwnersHold(RingTestCluster ring, byte[] key)
    {
        var positions = KeyHashes.All(key);
        return [.. KeyHashes.Methods.Select(m =>
        {
            var owner = ring.Nodes.Single(n => n.Id == ring.Nodes[0].Find(positions[(int)m])!.Id);
            return $"{m}: {owner.DescribeLocalForTest(m, positions[(int)m])}";
        })];
    }

    /// <summary>Sends py2p's delta <c>[17, method, position, map]</c> from the py2p peer to the owner of each of the key's positions.</summary>
    /// <summary>
    /// Sends py2p's <paramref name="kind"/> (store or delta, fire-and-forget) to each position's owner until every
    /// position holds what <paramref name="held"/> accepts: the py2p peer's connection to a node may be replaced
    /// meanwhile (both dial at once, and the duplicate is closed with what it carried). Both are idempotent here.
    /// </summary>
    private static Task SendUntilHeldAsync(RingTestCluster ring, LegacyPy2pPeer py2p, RingPosition[] positions, SubFlag kind, MsgValue value, Func<(MsgValue Value, EntryVersion? Version), bool> held, string because) =>
        Eventually.UntilAsync(async () =>
        {
            var missing = KeyHashes.Methods.Where(m => !ring.Nodes.Any(n => n.PeekLocalForTest(m, positions[(int)m]) is { } entry && held(entry))).ToList();
            foreach (var method in missing)
            {
                var owner = ring.Nodes[0].Find(positions[(int)method])!.Id;
                await (await PeerAsync(py2p, owner)).WhisperAsync((long)kind, Method(method), Position(positions[(int)method]), value);
            }

            return missing.Count == 0;
        }, Eventually.Deadline, because);

    private static async Task SendPy2pDeltasAsync(RingTestCluster ring, LegacyPy2pPeer py2p, byte[] key, MsgValue delta)
    {
        var positions = KeyHashes.All(key);
        foreach (var method in KeyHashes.Methods)
        {
            var owner = ring.Nodes[0].Find(positions[(int)method])!.Id;
            await (await PeerAsync(py2p, owner)).WhisperAsync((long)SubFlag.Delta, Method(method), Position(positions[(int)method]), delta);
        }
    }

    [Fact]
    public async Task A_py2p_delta_changes_no_entry_of_the_register_and_brings_no_deleted_key_back()
    {
        var logs = new LogCapture();
        await using var ring = await RingTestCluster.StartAsync(3, logs: logs, configure: o =>
        {
            o.Mesh.Security = MeshSecurity.AllowUnauthenticated;
            o.KeepPlacementCopies = false; // no copy lands while the entries are compared
        });
        await using var py2p = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await py2p.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.Any(m => m.Id == py2p.Id)), "every node to know the py2p peer");

        // A map written through the register, held at all five positions.
        const string key = "delta-over-the-register";
        var keyBytes = RingNode.KeyBytes(key);
        var honest = MsgValue.Map(("owner", "honest"));
        await ring.Nodes[0].SetAsync(key, honest);
        await EveryPositionHoldsAsync(ring, KeyHashes.All(keyBytes), honest);
        var before = await ring.Nodes[1].GetVersionedAsync(key);
        var held = OwnersHold(ring, keyBytes);

        // py2p's delta at every position: each is refused and counted, and no entry changes (value, version, promise).
        var refused = RefusedInputs(ring);
        await SendPy2pDeltasAsync(ring, py2p, keyBytes, MsgValue.Map(("owner", "forged")));
        await Eventually.UntilAsync(() => RefusedInputs(ring) == refused + KeyHashes.Methods.Count, "each py2p delta to be refused");
        Assert.Equal(held, OwnersHold(ring, keyBytes));
        Assert.Contains(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Refused from " + py2p.Id, StringComparison.Ordinal) && l.Text.Contains("py2p delta", StringComparison.Ordinal));
        foreach (var node in ring.Nodes)
        {
            var read = await node.GetVersionedAsync(key);
            Assert.Equal(before.Value, read.Value);
            Assert.Equal(before.Version, read.Version); // the ETag
        }

        // Honest writes go on: a write, a read through every node, a delete.
        await ring.Nodes[2].SetAsync(key, MsgValue.Map(("owner", "honest-2")));
        foreach (var node in ring.Nodes)
        {
            Assert.Equal(MsgValue.Map(("owner", "honest-2")), await node.GetAsync(key));
        }

        await ring.Nodes[1].DeleteAsync(key);
        await Eventually.UntilAsync(
            () => KeyHashes.Methods.All(m => ring.Nodes.Any(n => n.PeekLocalForTest(m, KeyHashes.All(keyBytes)[(int)m]) is { Value.IsNil: true, Version: not null })),
            "every position to hold the tombstone");
        var tombstones = OwnersHold(ring, keyBytes);

        // py2p's delta over the tombstones would merge into an empty map and bring the key back: refused too.
        refused = RefusedInputs(ring);
        await SendPy2pDeltasAsync(ring, py2p, keyBytes, MsgValue.Map(("owner", "revived")));
        await Eventually.UntilAsync(() => RefusedInputs(ring) == refused + KeyHashes.Methods.Count, "each py2p delta over a tombstone to be refused");
        Assert.Equal(tombstones, OwnersHold(ring, keyBytes));
        foreach (var node in ring.Nodes)
        {
            await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => node.GetAsync(key));
        }

        await ring.Nodes[0].SetAsync(key, MsgValue.Map(("owner", "honest-3")));
        Assert.Equal(MsgValue.Map(("owner", "honest-3")), await ring.Nodes[2].GetAsync(key));
    }

    [Fact]
    public async Task A_py2p_delta_still_merges_into_a_value_py2p_wrote()
    {
        await using var ring = await RingTestCluster.StartAsync(2, configure: o => o.Mesh.Security = MeshSecurity.AllowUnauthenticated);
        await using var py2p = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in ring.Nodes)
        {
            await py2p.ConnectAsync(node);
        }

        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.Any(m => m.Id == py2p.Id)), "every node to know the py2p peer");
        var keyBytes = RingNode.KeyBytes("py2p-map");
        var positions = KeyHashes.All(keyBytes);
        // py2p's stores are fire-and-forget, and the py2p peer's connection to a node may be replaced meanwhile (both
        // dial at once, and the duplicate is closed with what it carried): store until every position holds the value,
        // so that the deltas below meet py2p's value rather than an empty position.
        var written = MsgValue.Map(("a", 1L));
        await SendUntilHeldAsync(ring, py2p, positions, SubFlag.Store, written, held => held.Value == written, "py2p's stores to reach every position");

        // The same for the deltas (merging {b: 2} twice gives what merging it once does).
        var merged = MsgValue.Map(("a", 1L), ("b", 2L));
        await SendUntilHeldAsync(ring, py2p, positions, SubFlag.Delta, MsgValue.Map(("b", 2L)), held => held.Version is null && held.Value == merged,
            "py2p's delta to merge into py2p's value at every position");
        Assert.Equal(merged, await ring.Nodes[1].GetAsync("py2p-map"));
        Assert.Equal(0, RefusedInputs(ring));
    }

    [Fact]
    public async Task A_versioned_delta_from_one_of_our_nodes_keeps_the_promise_of_the_entry_it_merges_into()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.KeepPlacementCopies = false);
        const string key = "versioned-delta";
        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        await ring.Nodes[0].SetAsync(key, MsgValue.Map(("a", 1L)));
        await EveryPositionHoldsAsync(ring, positions, MsgValue.Map(("a", 1L)));
        var promises = OwnersHold(ring, keyBytes).Select(PromiseOf).ToList();

        // A delta as our py2p-path writes send it (request id, version, key), at a version below the promise the entry holds.
        await using var raws = await AuthenticatedPeers.ConnectAsync(ring);
        foreach (var method in KeyHashes.Methods)
        {
            var owner = ring.Nodes[0].Find(positions[(int)method])!.Id;
            var id = $"delta-{method}";
            await raws[owner].SendMessageAsync(MainFlag.Whisper,
                [(long)SubFlag.Delta, Method(method), Position(positions[(int)method]), MsgValue.Map(("b", 2L)), id, 0L, new EntryVersion(1, "zzzz").ToMsgValue(), MsgValue.Bin(keyBytes)]);
            var ack = await raws[owner].WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == id, $"the owner's answer to {id}");
            Assert.True(ack.Message.Payload[3].AsBool());
        }

        // The promise each position gave node 0's next write is still there: that write takes one round.
        Assert.Equal(promises, OwnersHold(ring, keyBytes).Select(PromiseOf).ToList());
        var oneRound = ring.Nodes[0].RegisterOneRoundWrites;
        await ring.Nodes[0].SetAsync(key, MsgValue.Map(("c", 3L)));
        Assert.Equal(oneRound + 1, ring.Nodes[0].RegisterOneRoundWrites);
        Assert.Equal(MsgValue.Map(("c", 3L)), await ring.Nodes[2].GetAsync(key));

        static string PromiseOf(string held) => held[(held.IndexOf(" promised ", StringComparison.Ordinal) + " promised ".Length)..].Split(' ')[0];
    }

    /// <summary>One raw peer that knows the cluster secret on each node of a ring, by node id; disposed together.</summary>
    private sealed class AuthenticatedPeers : IAsyncDisposable
    {
        private readonly Dictionary<string, RawPeer> _peers = new(StringComparer.Ordinal);

        public RawPeer this[string nodeId] => _peers[nodeId];

        public IEnumerable<RawPeer> Values => _peers.Values;

        public static async Task<AuthenticatedPeers> ConnectAsync(RingTestCluster ring)
        {
            var peers = new AuthenticatedPeers();
            try
            {
                foreach (var node in ring.Nodes)
                {
                    var raw = await RawPeer.ConnectAsync(node.Mesh.Address);
                    peers._peers[node.Id] = raw;
                    await raw.AuthenticatedHandshakeAsync(node.Mesh);
                }
            }
            catch
            {
                await peers.DisposeAsync();
                throw;
            }

            return peers;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var raw in _peers.Values)
            {
                await raw.DisposeAsync();
            }
        }
    }

    private static MsgValue Method(HashMethod method) => MsgValue.BinAscii(method.WireName());

    private static MsgValue Position(RingPosition position) => MsgValue.BinAscii(position.ToBase58());

    private static long RefusedInputs(RingTestCluster ring) => ring.Nodes.Sum(n => n.GetStatistics().RefusedInputs);
}
