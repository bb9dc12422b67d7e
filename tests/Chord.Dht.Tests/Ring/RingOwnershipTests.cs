using System.Numerics;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// One acceptor per position, never two. Fencing: a node that turns storing serves its positions only once its
/// predecessor, which answered for them until then (a position's owner is the storing node at or before it), has said
/// it stopped and handed over what it held there. And no node answers for a position whose owner it cannot reach.
/// </summary>
public class RingOwnershipTests
{
    [Fact]
    public async Task A_lone_node_serves_as_soon_as_it_joins()
    {
        await using var cluster = await RingTestCluster.StartAsync(1, inMemory: true);

        Assert.True(cluster.Nodes[0].IsServing);
    }

    [Fact]
    public async Task Joining_returns_once_the_predecessor_has_answered_and_the_node_serves()
    {
        await using var cluster = await RingTestCluster.StartAsync(3, inMemory: true);

        var newcomer = await cluster.AddNodeAsync();

        Assert.True(newcomer.IsServing, "JoinAsync returned before the node served its positions");
    }

    [Fact]
    public async Task A_new_member_takes_no_write_for_its_positions_until_its_predecessor_has_stopped_answering_for_them()
    {
        await using var cluster = await StartWithShortFenceWaitsAsync(2);
        IgnoreFences(cluster.Nodes, true);

        var newcomer = await cluster.AddNodeAsync(join: false);
        await KnowsTheRingAsync(newcomer, 2);
        await newcomer.JoinAsync();
        Assert.False(newcomer.IsLeeching);
        Assert.False(newcomer.IsServing);
        await Eventually.UntilAsync(
            () => cluster.Nodes.All(n => n == newcomer || n.Members.Any(m => m.Id == newcomer.Id && m.IsStoring)),
            TimeSpan.FromSeconds(30), "every node to know the newcomer storing (and route its positions to it)");

        // A key with one or two positions at the newcomer: the other three or four still make a quorum.
        var (key, mine) = Enumerable.Range(0, 1_000)
            .Select(i => $"fence-{i}")
            .Select(k => (Key: k, Mine: KeyHashes.Methods.Where(m => newcomer.Find(KeyHashes.Position(m, RingNode.KeyBytes(k)))!.Id == newcomer.Id).ToList()))
            .First(c => c.Mine.Count is 1 or 2);
        var writer = cluster.Nodes[0];

        await writer.UpdateAsync(key, _ => RegisterChange.To(MsgValue.Str("before")), announce: false);

        foreach (var method in mine)
        {
            var held = newcomer.PeekLocalForTest(method, KeyHashes.Position(method, RingNode.KeyBytes(key)));
            Assert.True(held is null, $"the newcomer took a write for its position before its predecessor answered its fence: {held}");
        }

        IgnoreFences(cluster.Nodes, false);

        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to serve once its predecessor answers its fence");
        // Written through the newcomer: its own proposer prepares there (the first writer's sticky one-round accept
        // would be refused by a position that never promised it, and only repair would bring the value).
        await newcomer.UpdateAsync(key, _ => RegisterChange.To(MsgValue.Str("after")), announce: false);

        Assert.Equal("after", (await writer.GetAsync(key)).AsString());
        foreach (var method in mine)
        {
            var position = KeyHashes.Position(method, RingNode.KeyBytes(key));
            await Eventually.UntilAsync(
                () => newcomer.PeekLocalForTest(method, position) is { } held && held.Value.Equals(MsgValue.Str("after")),
                TimeSpan.FromSeconds(30), $"the newcomer to hold the write at its {method.WireName()} position");
        }
    }

    [Fact]
    public async Task A_connection_to_the_predecessor_that_closes_before_its_hello_does_not_make_the_newcomer_serve()
    {
        // A closed connection (the mesh drops one of two made at once) says nothing about what the node speaks; taken
        // for "a py2p node, no fence to wait for", it let a newcomer serve at once (a CI run of the test above).
        await using var cluster = await StartWithShortFenceWaitsAsync(2);
        IgnoreFences(cluster.Nodes, true);

        var newcomer = await cluster.AddNodeAsync(join: false);
        await KnowsTheRingAsync(newcomer, 2);
        var closed = 0;
        newcomer.BeforeFenceForTest = async peer =>
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                // Handlers run in the order they were added: once ours runs, the ring node has handled the loss.
                var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                newcomer.Mesh.PeerDisconnected += (_, e) =>
                {
                    if (e.Peer == peer)
                    {
                        dropped.TrySetResult();
                    }
                };
                peer.Close();
                await dropped.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
        };

        await newcomer.JoinAsync();

        Assert.Equal(1, Volatile.Read(ref closed));
        Assert.False(newcomer.IsServing, "the newcomer served because a connection to its predecessor closed before its hello");
        IgnoreFences(cluster.Nodes, false);

        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to serve once its predecessor answers its fence");
    }

    [Fact]
    public async Task A_newcomer_that_lost_its_predecessors_hello_asks_for_it_again_and_serves()
    {
        // Its hello was read on a connection the mesh then dropped as a duplicate, before the one it kept was
        // registered: on that live connection nothing says the node is ours, and the fence waits to know.
        await using var cluster = await StartWithShortFenceWaitsAsync(2);
        var newcomer = await cluster.AddNodeAsync(join: false);
        await KnowsTheRingAsync(newcomer, 2);
        foreach (var node in cluster.Nodes.Where(n => n != newcomer))
        {
            newcomer.ForgetCapabilityForTest(node.Id);
        }

        await newcomer.JoinAsync();

        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to learn its predecessor speaks the extensions and serve");
    }

    [Fact]
    public async Task A_newcomer_reported_gone_before_its_fence_was_answered_fences_again_at_its_new_epoch_and_serves()
    {
        // Reported gone, a node says it is alive with a new epoch; the fence exchange runs for one epoch, and answers
        // for the old one are refused, so without a new exchange it never served.
        await using var cluster = await StartWithShortFenceWaitsAsync(2);
        IgnoreFences(cluster.Nodes, true);

        var newcomer = await cluster.AddNodeAsync(join: false);
        await KnowsTheRingAsync(newcomer, 2);
        await newcomer.JoinAsync();
        Assert.False(newcomer.IsServing);
        var joinedAt = newcomer.Self.Epoch;

        newcomer.ReportedGoneForTest();
        Assert.True(newcomer.Self.Epoch > joinedAt, "a node reported gone says it is alive with a new epoch");
        IgnoreFences(cluster.Nodes, false);

        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to fence again at its new epoch and serve");
    }

    [Fact]
    public async Task Of_two_adjacent_newcomers_the_second_serves_only_once_the_first_does()
    {
        // The second's predecessor is the first, which holds nothing yet: its answer would say nothing about the member
        // before it, which answers for both until the first's fence is answered: it says it does not serve, and the
        // second asks the member before it too.
        await using var cluster = await StartWithShortFenceWaitsAsync(2);
        var members = cluster.Nodes.ToList();
        IgnoreFences(members, true);

        // Three newcomers among two members: two of them are neighbours on the ring.
        var newcomers = new List<RingNode>();
        for (var i = 0; i < 3; i++)
        {
            newcomers.Add(await cluster.AddNodeAsync(join: false));
        }

        var order = members.Concat(newcomers).OrderBy(n => n.Position).ToList();
        var at = Enumerable.Range(0, order.Count).First(i => newcomers.Contains(order[i]) && newcomers.Contains(order[(i + 1) % order.Count]));
        var (first, second) = (order[at], order[(at + 1) % order.Count]);
        await KnowsTheRingAsync(first, 2);
        await first.JoinAsync();
        Assert.False(first.IsServing);
        await KnowsTheRingAsync(second, 3);

        await second.JoinAsync();

        Assert.False(second.IsServing, "the second newcomer served on the word of the first, which did not serve yet");
        IgnoreFences(members, false);

        await Eventually.UntilAsync(() => first.IsServing && second.IsServing, TimeSpan.FromSeconds(30), "both newcomers to serve once the member before them answers");
    }

    [Fact]
    public async Task Members_that_all_join_at_once_all_serve()
    {
        // A cluster's first start: each one's predecessor is new too, and none serves to answer for the others.
        await using var cluster = await StartWithShortFenceWaitsAsync(4, join: false);

        // Each one takes every other for storing at the epoch its join will announce before it joins, so each one's
        // fence goes to a member that does not serve either (joined truly together, the first to announce would
        // find nobody storing and serve alone).
        foreach (var node in cluster.Nodes)
        {
            foreach (var other in cluster.Nodes.Where(o => o != node))
            {
                node.MergeMemberForTest(other.Self with { IsStoring = true, Epoch = other.Self.Epoch + 1 });
            }
        }

        await Task.WhenAll(cluster.Nodes.Select(n => n.JoinAsync()));

        await Eventually.UntilAsync(() => cluster.Nodes.All(n => n.IsServing), TimeSpan.FromSeconds(30), "every member to serve");
        await cluster.WaitUntilConvergedAsync();
        await cluster.Nodes[0].SetAsync("together", "v");
        Assert.Equal("v", (await cluster.Nodes[3].GetAsync("together")).AsString());
    }

    [Fact]
    public async Task A_newcomer_serves_only_once_the_member_that_answered_for_its_positions_answers_its_fence()
    {
        // A position's owner is the storing node at or before it: until the newcomer joined, its positions were its
        // predecessor's. Its successor never answered for them, so the successor's word proves nothing.
        await using var cluster = await StartWithShortFenceWaitsAsync(3);
        var members = cluster.Nodes.ToList();
        var newcomer = await cluster.AddNodeAsync(join: false);
        var predecessor = PredecessorOf(newcomer, members);
        predecessor.IgnoreFencesForTest = true;
        await KnowsTheRingAsync(newcomer, members.Count);

        await newcomer.JoinAsync();

        Assert.False(newcomer.IsServing, "the newcomer served its positions while the member that answered for them until then had not answered its fence");
        predecessor.IgnoreFencesForTest = false;
        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to serve once its predecessor answers its fence");
    }

    [Fact]
    public async Task A_newcomer_holds_what_its_predecessor_held_at_its_positions_when_it_starts_serving()
    {
        await using var cluster = await RingTestCluster.StartAsync(3, inMemory: true);
        var members = cluster.Nodes.ToList();
        var newcomer = await cluster.AddNodeAsync(join: false);
        var predecessor = PredecessorOf(newcomer, members);

        // Keys with a position the predecessor owns now and the newcomer will own once it joins.
        var ring = members.Append(newcomer).OrderBy(n => n.Position).ToList();
        var next = ring[(ring.IndexOf(newcomer) + 1) % ring.Count].Position;
        var keys = Enumerable.Range(0, 5_000)
            .Select(i => $"handed-{i}")
            .Select(k => (Key: k, Methods: KeyHashes.Methods.Where(m => Between(KeyHashes.Position(m, RingNode.KeyBytes(k)).Reduced, newcomer.Position, next)).ToList()))
            .Where(c => c.Methods.Count == 1)
            .Take(20)
            .ToList();
        Assert.Equal(20, keys.Count);
        foreach (var (key, _) in keys)
        {
            await members[0].UpdateAsync(key, _ => RegisterChange.To(MsgValue.Str(key)), announce: false);
        }

        foreach (var (key, methods) in keys)
        {
            var position = KeyHashes.Position(methods[0], RingNode.KeyBytes(key));
            await Eventually.UntilAsync(() => predecessor.PeekLocalForTest(methods[0], position) is not null, TimeSpan.FromSeconds(30), $"the predecessor to hold {key}");
        }

        await KnowsTheRingAsync(newcomer, members.Count);
        await newcomer.JoinAsync();

        Assert.True(newcomer.IsServing, "the newcomer did not serve within the request timeout");
        var missing = keys.Where(k => newcomer.PeekLocalForTest(k.Methods[0], KeyHashes.Position(k.Methods[0], RingNode.KeyBytes(k.Key))) is null).Select(k => k.Key).ToList();
        Assert.True(missing.Count == 0, $"the newcomer serves without what its predecessor held at its positions: {string.Join(", ", missing)}");
    }

    [Fact]
    public async Task What_the_predecessor_accepted_while_a_node_was_away_replaces_what_the_node_loaded_at_start_whatever_the_ballots()
    {
        await using var cluster = await RingTestCluster.StartAsync(3, inMemory: true);
        var members = cluster.Nodes.ToList();
        var returning = await cluster.AddNodeAsync(join: false);
        var ring = members.Append(returning).OrderBy(n => n.Position).ToList();
        var next = ring[(ring.IndexOf(returning) + 1) % ring.Count].Position;
        var (key, method) = Enumerable.Range(0, 5_000).Select(i => $"returning-{i}")
            .SelectMany(k => KeyHashes.Methods.Select(m => (Key: k, Method: m)))
            .First(c => Between(KeyHashes.Position(c.Method, RingNode.KeyBytes(c.Key)).Reduced, returning.Position, next));
        var bytes = RingNode.KeyBytes(key);
        var position = KeyHashes.Position(method, bytes);

        // Written while the node was away, by its predecessor as the position's owner, under a low ballot.
        await members[0].SetAsync(key, "written while away");

        // What the node had before it went down: an older value under ballots far above (its positions' majority went
        // down with it, so the interim owner never learnt them).
        returning.PutLoadedAtStartForTest(method, position, MsgValue.Str("from before"), new EntryVersion(1_000, "before"), new EntryVersion(1_001, "before"), bytes);

        await KnowsTheRingAsync(returning, members.Count);
        await returning.JoinAsync();
        await Eventually.UntilAsync(() => returning.IsServing, TimeSpan.FromSeconds(30), "the returning node to serve");

        Assert.Equal(MsgValue.Str("written while away"), returning.PeekLocalForTest(method, position)?.Value);
    }

    [Fact]
    public async Task A_prepare_its_predecessor_decided_to_apply_before_the_newcomer_joined_goes_on_to_the_newcomer_after_the_handoff()
    {
        // The predecessor decides "I own this position" for a prepare, and the apply comes only after the newcomer's
        // fence has merged it and the handoff has scanned the table. Applied then, the promise (and the accept that
        // follows it) would be acceptor state at a node that no longer answers for the position: acknowledgements
        // that count toward the write's quorum while the newcomer serves without the value.
        await using var cluster = await RingTestCluster.StartAsync(3, inMemory: true, configure: o => o.AntiEntropyInterval = TimeSpan.FromHours(1));
        var members = cluster.Nodes.ToList();
        var newcomer = await cluster.AddNodeAsync(join: false);
        var predecessor = PredecessorOf(newcomer, members);
        var writer = members.First(m => m != predecessor);
        var proposer = members.First(m => m != predecessor && m != writer); // no ballot of its own for the key: it prepares
        var ring = members.Append(newcomer).OrderBy(n => n.Position).ToList();
        var next = ring[(ring.IndexOf(newcomer) + 1) % ring.Count].Position;
        var (key, method) = Enumerable.Range(0, 5_000).Select(i => $"late-{i}")
            .Select(k => (Key: k, Methods: KeyHashes.Methods.Where(m => Between(KeyHashes.Position(m, RingNode.KeyBytes(k)).Reduced, newcomer.Position, next)).ToList()))
            .Where(c => c.Methods.Count == 1)
            .Select(c => (c.Key, c.Methods[0]))
            .First();
        var position = KeyHashes.Position(method, RingNode.KeyBytes(key));
        await writer.SetAsync(key, "before");

        using var decided = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        predecessor.HoldApplyForTest = (m, p) =>
        {
            if (m == method && p == position)
            {
                decided.Set();
                release.Wait(TimeSpan.FromSeconds(60));
            }
        };
        var write = Task.Run(() => proposer.UpdateAsync(key, _ => RegisterChange.To(MsgValue.Str("late"))));
        Assert.True(await Task.Run(() => decided.Wait(TimeSpan.FromSeconds(30))), "the predecessor never came to apply the prepare");

        await KnowsTheRingAsync(newcomer, members.Count);
        await newcomer.JoinAsync();
        Assert.True(newcomer.IsServing, "the newcomer did not serve within the request timeout");
        predecessor.HoldApplyForTest = null;
        release.Set();
        Assert.True((await write).Written);

        // The held prepare met the new ring: refused at the predecessor (and routed on to the newcomer). The
        // predecessor holds no acceptor state there (a placement copy of the committed value may come: a hint).
        bool HoldsAcceptorState() => predecessor.PeekLocalForTest(method, position) is not null && !predecessor.DescribeLocalForTest(method, position).Contains("(copy)", StringComparison.Ordinal);
        await Eventually.UntilAsync(() => predecessor.GetStatistics().MovedAway >= 1 || HoldsAcceptorState(), TimeSpan.FromSeconds(30),
            "the predecessor to apply or refuse the prepare it had decided to apply before the newcomer took the position over");
        Assert.False(HoldsAcceptorState(),
            $"the predecessor holds {predecessor.DescribeLocalForTest(method, position)} at a position the newcomer serves, after its handoff: a promise no owner backs");
        Assert.Equal(MsgValue.Str("late"), await newcomer.GetAsync(key));
    }

    /// <summary>
    /// A test ring whose joins wait 2 s for the fence's answer (the request time) and ask again every 200 ms (the
    /// attempt time), so that a fence that is not answered ends JoinAsync quickly.
    /// </summary>
    private static Task<RingTestCluster> StartWithShortFenceWaitsAsync(int count, bool join = true) =>
        RingTestCluster.StartAsync(count, inMemory: true, join: join, configure: o =>
        {
            o.RequestTimeout = TimeSpan.FromSeconds(2);
            o.AttemptTimeout = TimeSpan.FromMilliseconds(200);
        });

    /// <summary>Makes <paramref name="nodes"/> read no fence (or read them again): whichever is a newcomer's predecessor does not answer it meanwhile.</summary>
    private static void IgnoreFences(IEnumerable<RingNode> nodes, bool ignore)
    {
        foreach (var node in nodes)
        {
            node.IgnoreFencesForTest = ignore;
        }
    }

    /// <summary>Waits until <paramref name="node"/> knows the ring's storing members (one that knows none serves at once when it joins).</summary>
    private static Task KnowsTheRingAsync(RingNode node, int storing) =>
        Eventually.UntilAsync(() => node.Members.Count(m => m.IsStoring) == storing, TimeSpan.FromSeconds(30), "the node to learn the ring's members");

    /// <summary>The member that owns <paramref name="newcomer"/>'s position while it is not on the ring.</summary>
    private static RingNode PredecessorOf(RingNode newcomer, IReadOnlyList<RingNode> members) =>
        members.Where(m => m.Position < newcomer.Position).MaxBy(m => m.Position) ?? members.MaxBy(m => m.Position)!;

    /// <summary>True when <paramref name="position"/> lies in [<paramref name="from"/>, <paramref name="to"/>) going round the ring.</summary>
    private static bool Between(RingPosition position, RingPosition from, RingPosition to) =>
        from < to ? position >= from && position < to : position >= from || position < to;

    [Fact]
    public async Task A_position_whose_owner_cannot_be_reached_is_answered_by_nobody_else_and_the_owner_is_checked()
    {
        await using var cluster = await RingTestCluster.StartAsync(1, inMemory: true);
        var node = cluster.Nodes[0];

        // A member the directory lists but nothing answers for: a node that died before anyone noticed.
        var ghost = new RingMember(Base58.Encode(new BigInteger(SHA384.HashData("ghost"u8), isUnsigned: true, isBigEndian: true)), new PeerAddress("127.0.0.1", 1), IsStoring: true, Epoch: 1);
        node.MergeMemberForTest(ghost);
        var position = ghost.Position; // the ghost's own position is one it owns

        var failure = await Assert.ThrowsAsync<ChordTimeoutException>(() => node.RetrieveAsync(HashMethod.Sha384, position));
        Assert.Contains("cannot be reached", failure.Message, StringComparison.Ordinal);

        // The failed dial has the member checked: it cannot be dialled, so it is removed, and the node owns the
        // position again (and answers for it).
        // (Both: the directory drops the member a moment before the routing snapshot is rebuilt without it.)
        await Eventually.UntilAsync(() => node.Members.All(m => m.Id != ghost.Id) && node.Find(position)!.Id == node.Id, TimeSpan.FromSeconds(30),
            "the unreachable owner to be removed and its position routed here");
        Assert.Equal(0, (await node.RetrieveAsync(HashMethod.Sha384, position)).Hops);
    }
}
