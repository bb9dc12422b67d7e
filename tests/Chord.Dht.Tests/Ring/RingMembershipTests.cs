using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>Handoff (PROTOCOL.md §5): a joining node receives what it now owns; an unjoining node gives all it holds away.</summary>
public class RingMembershipTests
{
    /// <summary>One entry per position, at its owner (placement copies off), so counts are exact.</summary>
    private static void ExactPlacement(RingOptions options) => options.KeepPlacementCopies = false;

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Every (method, position) of <paramref name="entries"/> that <paramref name="ownerId"/> owns among <paramref name="storingIds"/>.</summary>
    private static List<(HashMethod Method, RingPosition Position)> OwnedBy(IReadOnlyDictionary<string, MsgValue> entries, IReadOnlyCollection<string> storingIds, string ownerId) =>
        [.. entries.Keys.SelectMany(k => RingTestData.Positions(k).Select((p, i) => ((HashMethod)i, p))).Where(x => RingTestData.OwnerOf(storingIds, x.p) == ownerId)];

    /// <summary>True when every storing node holds exactly the entries it owns, and nobody else holds anything.</summary>
    private static bool EachEntryAtItsOwnerOnly(RingTestCluster ring, IReadOnlyDictionary<string, MsgValue> entries)
    {
        var ids = ring.Storing.Select(n => n.Id).ToList();
        return ring.Nodes.Sum(n => n.StoredCount) == 5 * entries.Count
            && ring.Storing.All(n => n.StoredCount == OwnedBy(entries, ids, n.Id).Count);
    }

    /// <summary>Per node, what it stores against what it owns, for a failure message of <see cref="EachEntryAtItsOwnerOnly"/>.</summary>
    private static string DescribePlacement(RingTestCluster ring, IReadOnlyDictionary<string, MsgValue> entries)
    {
        var ids = ring.Storing.Select(n => n.Id).ToList();
        return "Stored/owned per node: " + string.Join(", ", ring.Nodes.Select(n =>
            $"{RingTestData.Short(n.Id)} {n.StoredCount}/{(n.IsLeeching ? 0 : OwnedBy(entries, ids, n.Id).Count)} (sees {n.Members.Count(m => m.IsStoring)} storing)"))
            + $"; total {ring.Nodes.Sum(n => n.StoredCount)} of {5 * entries.Count}.";
    }

    [Fact]
    public async Task A_node_that_missed_a_members_announcement_learns_it_from_a_peers_directory()
    {
        // Member broadcasts are flooded once; a node that missed one and already holds every connection it wants
        // makes no new connection, so no hello would ever tell it. The periodic directory push must.
        await using var ring = await RingTestCluster.StartAsync(3, inMemory: true);
        var (forgetful, member) = (ring.Nodes[0], ring.Nodes[2]);
        Assert.NotNull(forgetful.Mesh.GetPeer(member.Id));
        forgetful.ForgetMemberForTest(member.Id);
        Assert.DoesNotContain(forgetful.Members, m => m.Id == member.Id);

        await Eventually.UntilAsync(() => forgetful.Members.Any(m => m.Id == member.Id && m.IsStoring), Wait,
            "the node to learn the member again from a peer's directory");
        await ring.WaitUntilConvergedAsync();
    }

    /// <summary>
    /// A false "gone" report the member itself never hears (so it never announces a newer epoch): every other
    /// directory lists it at the epoch the node marked departed, which refuses such relayed news for ten minutes, so
    /// the ring stayed split that long (seen under load: a 16-node ring whose three nodes lacked one member for the
    /// whole minute RingBulkTests waits, and 256-node rings that took ten minutes to converge). The node now asks the
    /// member itself when a peer still lists it, and the member's own hello brings it back.
    /// </summary>
    [Fact]
    public async Task A_member_falsely_marked_departed_is_brought_back_by_asking_it()
    {
        await using var ring = await RingTestCluster.StartAsync(16, inMemory: true, configure: o => o.NeighbourCount = 1);
        var pairs = ring.Nodes.SelectMany(a => ring.Nodes.Where(b => b != a).Select(b => (Node: a, Member: b)))
            .Where(p => p.Node.Mesh.GetPeer(p.Member.Id) is null && p.Member.Mesh.GetPeer(p.Node.Id) is null).ToList();
        Assert.True(pairs.Count > 0, "some two nodes of 16 with one neighbour each are not connected");
        var (node, member) = pairs[0];

        node.MarkDepartedForTest(member.Id);
        Assert.DoesNotContain(node.Members, m => m.Id == member.Id);

        await Eventually.UntilAsync(() => node.Members.Any(m => m.Id == member.Id && m.IsStoring), Wait,
            "the node to take the member back once it asked the member itself");
        await ring.WaitUntilConvergedAsync();
    }

    /// <summary>
    /// A member answers a report of its departure with a new epoch; its member broadcast can overtake the report in
    /// the flood. A node that then took the late report would mark the member departed at the new epoch, refuse every
    /// relayed listing of it for ten minutes, and keep the ring split (a 64-node ring in CI lacked one member at 37
    /// nodes for ten minutes). A report older than what a node knows removes nothing: the node checks for itself.
    /// </summary>
    [Fact]
    public async Task A_report_of_a_departure_older_than_the_members_own_announcement_removes_nothing()
    {
        var logs = new LogCapture();
        await using var ring = await RingTestCluster.StartAsync(16, inMemory: true, configure: o => o.NeighbourCount = 1, logs: logs);
        await Eventually.UntilAsync(() => ring.Nodes.Select(n => Convert.ToHexString(n.DirectoryDigestForTest())).Distinct().Count() == 1, Wait,
            "every node to list every member at the same epoch");
        // The member with the fewest connections: node ids are random, and one that many nodes keep as a finger may be
        // connected to all the others.
        var member = ring.Nodes.MinBy(n => ring.Nodes.Count(x => x != n && x.Mesh.GetPeer(n.Id) is not null))!;
        var reporter = ring.Nodes.First(n => n != member);
        var unconnected = ring.Nodes.Where(n => n != member && n.Mesh.GetPeer(member.Id) is null).ToList();
        Assert.True(unconnected.Count > 0, "some node of 16 with one neighbour each is not connected to the member");
        var announced = member.Self.Epoch;

        // The report names the epoch before the member's announcement, as a report sent before it would.
        await reporter.Mesh.BroadcastPayloadAsync((long)RingSubFlag.Gone, MsgValue.BinAscii(member.Id), announced - 1);
        // Each node not connected to the member logs what it made of the report: ignored as stale, or the member gone.
        await Eventually.UntilAsync(
            () => logs.Entries.Count(e => e.Text.Contains($"report that member {member.Id} is gone") || e.Text.Contains($"Member {member.Id} is gone")) >= unconnected.Count,
            Wait, "every node not connected to the member to handle the report");

        Assert.DoesNotContain(logs.Entries, e => e.Text.Contains($"Member {member.Id} is gone"));
        Assert.All(ring.Nodes.Where(n => n != member), n => Assert.Contains(n.Members, m => m.Id == member.Id && m.IsStoring));
        await ring.WaitUntilConvergedAsync();
    }

    /// <summary>
    /// A node queues chord meta ("leeching") on each connection it makes before it joins; a peer can read it after the
    /// node's "storing at epoch E" reached it through the flood. Taken as first-hand news at the epoch known, it set
    /// "leeching at E", and every later "storing at E" was refused as old news: in a 256-node ring every node lacked
    /// that member for ten minutes. From one of our nodes (it sent a hello), chord meta changes nothing.
    /// </summary>
    [Fact]
    public async Task A_late_chord_meta_from_one_of_our_nodes_does_not_turn_a_storing_member_into_a_client()
    {
        await using var ring = await RingTestCluster.StartAsync(2, inMemory: true);
        var (a, b) = (ring.Nodes[0], ring.Nodes[1]);
        var epoch = b.Self.Epoch;
        Assert.Contains(a.Members, m => m.Id == b.Id && m.IsStoring && m.Epoch == epoch);

        // B's connection delivers a meta that says "leeching" (as one queued before its join would), then a ping.
        var link = b.Mesh.GetPeer(a.Id)!;
        await link.SendAsync(b.Mesh.CreateMessage(MainFlag.Whisper, (long)SubFlag.Handshake, "1"));
        await link.PingAsync();

        Assert.Contains(a.Members, m => m.Id == b.Id && m.IsStoring && m.Epoch == epoch);
        Assert.Equal(b.Id, a.Find(b.Position)!.Id);
    }

    /// <summary>
    /// A node's own entry (what its hellos and directory digests carry) pairs its state with the epoch of that state.
    /// Read apart, a hello built during a join said "leeching" at the join's new epoch, and peers that got it first
    /// refused the join's "storing" at that same epoch as old news, keeping the node as a client for good.
    /// </summary>
    [Fact]
    public async Task A_nodes_own_entry_never_pairs_one_state_with_another_states_epoch()
    {
        await using var node = new RingNode(new RingOptions(), loggerFactory: null, new Chord.Dht.Mesh.Transport.InMemoryTransport());
        await node.StartAsync();
        var first = node.Self.Epoch; // leeching; every join adds one (storing), every unjoin one more (leeching)
        using var stop = new CancellationTokenSource();
        var torn = 0L;
        var reads = 0L;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var self = node.Self;
                reads++;
                if (self.IsStoring != ((self.Epoch - first) % 2 == 1))
                {
                    torn++;
                }
            }
        });

        for (var i = 0; i < 3_000; i++)
        {
            await node.JoinAsync();
            await node.UnjoinAsync();
        }

        await stop.CancelAsync();
        await reader;
        Assert.True(reads > 0);
        Assert.Equal(0, torn);
        Assert.Equal(first + 6_000, node.Self.Epoch);
    }

    [Fact]
    public async Task A_converged_ring_agrees_on_one_directory_digest_so_gossip_sends_digests_only()
    {
        // Anti-entropy sends whole directories only where digests differ: in a settled ring they must all match.
        await using var ring = await RingTestCluster.StartAsync(8, inMemory: true);
        await ring.WaitUntilConvergedAsync();
        await Eventually.UntilAsync(() => ring.Nodes.Select(n => Convert.ToHexString(n.DirectoryDigestForTest())).Distinct().Count() == 1, Wait,
            "every node's directory digest to be the same");

        // And any change shows in the digest: a node that forgets a member no longer matches the others.
        var before = ring.Nodes[0].DirectoryDigestForTest();
        ring.Nodes[0].ForgetMemberForTest(ring.Nodes[1].Id);
        Assert.NotEqual(before, ring.Nodes[0].DirectoryDigestForTest());
    }

    [Fact]
    public async Task A_stale_directory_from_a_peer_does_not_bring_back_a_departed_member()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (survivor, departed) = (ring.Nodes[0], ring.Nodes[2]);
        var entry = MsgValue.Array(
            MsgValue.Array(departed.Mesh.Address.Host, departed.Mesh.Address.Port), MsgValue.BinAscii(departed.Id), true, departed.Self.Epoch);
        await ring.Remove(departed).DisposeAsync(); // a crash: no unjoin
        await Eventually.UntilAsync(() => ring.Nodes.All(n => n.Members.All(m => m.Id != departed.Id)), Wait, "every survivor to drop the departed member");

        // A peer whose directory still lists it (at the epoch it departed with) pushes that directory.
        await using var stale = await RawPeer.ConnectAsync(survivor.Mesh.Address);
        await stale.AuthenticatedHandshakeAsync(survivor.Mesh); // one of ours: an unauthenticated hello would be ignored
        await stale.SendMessageAsync(MainFlag.Whisper, 0x33L /* hello */, 1L, MsgValue.Array(entry));
        await stale.SendMessageAsync(MainFlag.Ping, (long)SubFlag.Ping, "after-hello");
        await stale.WaitForAsync(m => m.Type == MainFlag.Pong && Inbox.TextOf(m) == "after-hello", "the pong after the hello (so the hello was handled)");

        Assert.DoesNotContain(survivor.Members, m => m.Id == departed.Id);
    }

    [Fact]
    public async Task A_node_joining_a_loaded_ring_receives_the_entries_it_now_owns_and_every_key_still_reads()
    {
        await using var ring = await RingTestCluster.StartAsync(4, inMemory: true, configure: ExactPlacement);
        var entries = RingTestData.Entries("join", 200);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 7);
        // A write returns once three positions accepted: an accept still in flight when the new node joins lands at the
        // old owner after its handoff ran, and that entry stays there (failed once in a loaded CI run).
        await Eventually.UntilAsync(() => ring.Nodes.Sum(n => n.StoredCount) == 5 * entries.Count, Wait, "every position to hold its entry");

        var newcomer = await ring.AddNodeAsync(join: true, configure: ExactPlacement);

        await Eventually.UntilAsync(() => newcomer.StoredCount > 0, Wait, "the new node to receive entries");
        await ring.WaitUntilConvergedAsync();
        await Eventually.UntilAsync(() => EachEntryAtItsOwnerOnly(ring, entries), Wait,
            "every entry to sit at its owner only (the handoff to end)", () => DescribePlacement(ring, entries));
        var ids = ring.Storing.Select(n => n.Id).ToList();
        var newcomerDump = newcomer.DumpData(newcomer.Position, newcomer.Position);
        foreach (var (method, position) in OwnedBy(entries, ids, newcomer.Id))
        {
            Assert.True(newcomerDump[method].ContainsKey(position), $"the new node lacks {method} {position}");
        }

        await RingTestData.AssertAllReadBackAsync(ring.Nodes, entries, "after the join");
    }

    [Fact]
    public async Task Nodes_unjoining_one_at_a_time_lose_no_key()
    {
        await using var ring = await RingTestCluster.StartAsync(8, inMemory: true, configure: ExactPlacement);
        var entries = RingTestData.Entries("unjoin", 300);
        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: 8);
        // A write returns once three positions accepted: the last accepts must land before a node hands its entries off.
        await Eventually.UntilAsync(() => ring.Nodes.Sum(n => n.StoredCount) == 5 * entries.Count, Wait, "every position to hold its entry");
        var random = new Random(8);

        while (ring.Storing.Count > 3)
        {
            var leaving = ring.Storing[random.Next(ring.Storing.Count)];
            var held = leaving.StoredCount;

            await leaving.UnjoinAsync();

            Assert.True(leaving.IsLeeching);
            Assert.Equal(0, leaving.StoredCount);
            await ring.WaitUntilConvergedAsync();
            Assert.Equal(5 * entries.Count, ring.Nodes.Sum(n => n.StoredCount)); // the held entries moved, none doubled
            var readers = ring.Storing.Append(leaving).ToList();
            await RingTestData.AssertAllReadBackAsync(readers, entries, $"after a node holding {held} entries unjoined, {ring.Storing.Count} storing left");
        }

        Assert.True(EachEntryAtItsOwnerOnly(ring, entries), "at the end every entry sits at its owner");
    }

    [Fact]
    public async Task Writes_from_the_seed_to_a_node_that_joined_right_after_connecting_are_acknowledged()
    {
        // A join sends chord meta to every connected peer; racing with the connection just made, it could reach the
        // seed before the new node's hello, and the seed then took our node for a py2p node (whose writes count as
        // unacknowledged) for as long as they stayed connected. Every owner must acknowledge here (write quorum 5),
        // so one position on such a node fails the write. Each round adds a node that joins at once. The race
        // shows on TCP (about one join in a hundred before the fix), not in memory: this test catches it only now
        // and then, the code review has to do the rest.
        await using var ring = await RingTestCluster.StartAsync(2, configure: o => o.WriteQuorum = 5);
        var seed = ring.Nodes[0];
        for (var round = 0; round < 20; round++)
        {
            var newcomer = await ring.AddNodeAsync(join: true); // connect to the seed, then join without waiting
            await ring.WaitUntilConvergedAsync();
            var ids = ring.Storing.Select(n => n.Id).ToList();
            var key = Enumerable.Range(0, 100_000).Select(i => $"newcomer-{round}-{i}").First(k => RingTestData.PositionsOwnedBy(ids, k, newcomer.Id) >= 1);

            await seed.SetAsync(key, "value"); // throws ChordWriteException when an owner's acknowledgement is ignored
        }
    }
}
