using Chord.Dht.Ring;
using Chord.Dht.Tests.Durability;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The accepts of one register round for the positions one node owns go in one <c>accepts</c> frame and come back in
/// one <c>acks</c> frame (docs/PROTOCOL-EXTENSIONS.md); a node whose hello names an older extension version gets each
/// accept alone; a receiver answers only for positions it owns.
/// </summary>
[Collection(FaultScenarioCollection.Name)]
public sealed class BatchedAcceptTests
{
    private const long Accepts = 0x3A;
    private const long Acks = 0x3B;

    /// <summary>A key two to four of whose positions the same node other than <paramref name="writer"/> owns (another node the rest), and that node.</summary>
    private static (string Key, string Owner) KeyWithTwoPositionsOnAnotherNode(RingNode writer)
    {
        for (var i = 0; ; i++)
        {
            var key = $"batched-{i}";
            var owners = KeyHashes.All(RingNode.KeyBytes(key)).Select(p => writer.Find(p)!.Id).ToList();
            if (owners.GroupBy(o => o).FirstOrDefault(g => g.Key != writer.Id && g.Count() is >= 2 and < 5) is { } group)
            {
                return (key, group.Key);
            }
        }
    }

    /// <summary>A key two to four of whose positions one node other than the first owns, that node, and a raw peer authenticated to it (also for BatchedRetrieveTests).</summary>
    internal static async Task<(byte[] Key, RingNode Owner, RawPeer Raw)> RawPeerAtOwnerAsync(RingTestCluster ring)
    {
        var (key, ownerId) = KeyWithTwoPositionsOnAnotherNode(ring.Nodes[0]);
        var owner = ring.Nodes.Single(n => n.Id == ownerId);
        var raw = await RawPeer.ConnectAsync(owner.Mesh.Address);
        await raw.AuthenticatedHandshakeAsync(owner.Mesh);
        return (RingNode.KeyBytes(key), owner, raw);
    }

    private static async Task AssertEveryPositionHoldsAsync(RingTestCluster ring, string key, string value)
    {
        var positions = KeyHashes.All(RingNode.KeyBytes(key));
        await Eventually.UntilAsync(
            () => KeyHashes.Methods.All(m => ring.Nodes.Single(n => n.Id == ring.Nodes[0].Find(positions[(int)m])!.Id).PeekLocalForTest(m, positions[(int)m])?.Value == MsgValue.Str(value)),
            TimeSpan.FromSeconds(30), $"every position's owner to hold '{value}'");
    }

    [Fact]
    public async Task A_one_round_write_sends_the_positions_one_node_owns_in_one_batch_and_their_answers_make_the_quorum()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var writer = ring.Nodes.First(n => n != owner);
        await writer.SetAsync(key, "first");

        var (sent, answered) = (writer.BatchedAccepts, writer.BatchAnswers);
        await writer.SetAsync(key, "second");

        // The owner's three positions are a quorum the others cannot make without them: the batch's answers counted.
        Assert.True(writer.BatchedAccepts - sent >= 3, $"{writer.BatchedAccepts - sent} accepts went in batches");
        Assert.True(writer.BatchAnswers - answered >= 3, $"{writer.BatchAnswers - answered} batched positions answered");
        await AssertEveryPositionHoldsAsync(ring, key, "second");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal("second", (await node.GetAsync(key)).AsString());
        }
    }

    [Fact]
    public async Task Nodes_whose_hello_names_the_older_extension_version_get_each_accept_alone()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.HelloVersionForTest = 1);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var writer = ring.Nodes.First(n => n != owner);

        await writer.SetAsync(key, "first");
        await writer.SetAsync(key, "second");

        Assert.Equal(0, writer.BatchedAccepts);
        await AssertEveryPositionHoldsAsync(ring, key, "second");
    }

    [Fact]
    public async Task A_batch_that_is_lost_is_sent_again_position_by_position_and_the_write_commits()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.AttemptTimeout = TimeSpan.FromMilliseconds(300));
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var writer = ring.Nodes.First(n => n != owner);
        await writer.SetAsync(key, "first"); // prepared: the next write is accepts only

        owner.DropRequestsForTest = 1; // the batch of the owner's three positions, which the quorum needs
        var prepares = writer.RegisterPrepareRounds;
        await writer.SetAsync(key, "second");

        Assert.True(Volatile.Read(ref owner.DropRequestsForTest) <= 0, "the owner never received the batch it was to drop");
        Assert.Equal(prepares, writer.RegisterPrepareRounds); // still one round: the positions went again alone within it
        Assert.True(writer.BatchedAccepts >= 3);
        await AssertEveryPositionHoldsAsync(ring, key, "second");
    }

    [Fact]
    public async Task A_batch_is_applied_at_the_positions_its_receiver_owns_and_the_others_are_answered_as_not_its_own()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (keyBytes, owner, raw) = await RawPeerAtOwnerAsync(ring);
        await using var _ = raw;
        var positions = KeyHashes.All(keyBytes);
        var owned = KeyHashes.Methods.Select(m => owner.Find(positions[(int)m])!.Id == owner.Id).ToArray();
        Assert.Contains(false, owned); // a key on one node only would not test the refusal

        var ballot = new EntryVersion(5, "zzzz").ToMsgValue();
        foreach (var method in KeyHashes.Methods.Where(m => owned[(int)m]))
        {
            // Phase 1 first, one position at a time: an acceptor takes an accept only under the ballot it promised.
            await raw.SendMessageAsync(MainFlag.Whisper,
                [(long)RingSubFlag.Prepare, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(positions[(int)method].ToBase58()), $"prepare-{method}", 0L, ballot, MsgValue.Bin(keyBytes)]);
            var promise = await raw.WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == $"prepare-{method}", $"the promise at {method}");
            Assert.True(promise.Message.Payload[3].AsBool(), $"{method} promised");
        }

        HashMethod[] order = [(HashMethod)4, (HashMethod)0, (HashMethod)3, (HashMethod)1, (HashMethod)2]; // entries follow the request's order
        await raw.SendMessageAsync(MainFlag.Whisper,
            [Accepts, "batch-1", 1L, MsgValue.Bin(keyBytes), "batched", ballot, ballot, MsgValue.Nil, MsgValue.Array(order.Select(m => MsgValue.From((long)m)))]);

        var acks = await raw.WaitForAsync(m => m.SubFlagValue == (int)Acks && m.Payload[1].AsString() == "batch-1", "the owner's acks");
        var entries = acks.Message.Payload[3].AsArray();
        Assert.Equal(5, entries.Length);
        for (var n = 0; n < order.Length; n++)
        {
            var method = order[n];
            var entry = entries[n].AsArray();
            if (owned[(int)method])
            {
                Assert.True(entry[0].AsBool(), $"{method}: {entries[n]}");
                Assert.Equal(new EntryVersion(5, "zzzz"), EntryVersion.TryRead(entry[3], out var accepted) ? accepted : EntryVersion.Zero);
                Assert.Equal(MsgValue.Str("batched"), owner.PeekLocalForTest(method, positions[(int)method])?.Value);
            }
            else
            {
                Assert.False(entry[0].AsBool());
                Assert.Contains("not this node's", entry[1].AsString(), StringComparison.Ordinal);
                Assert.Null(owner.PeekLocalForTest(method, positions[(int)method]));
            }
        }
    }

    [Fact]
    public async Task A_batch_with_a_ballot_out_of_range_is_refused_at_every_position_and_applied_at_none()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (keyBytes, owner, raw) = await RawPeerAtOwnerAsync(ring);
        await using var _ = raw;
        var positions = KeyHashes.All(keyBytes);
        var good = new EntryVersion(5, "zzzz").ToMsgValue();
        var outOfRange = MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz"));

        await raw.SendMessageAsync(MainFlag.Whisper,
            [Accepts, "poison", 1L, MsgValue.Bin(keyBytes), "poison", outOfRange, good, MsgValue.Nil, MsgValue.Array(0L, 1L, 2L, 3L, 4L)]);

        var acks = await raw.WaitForAsync(m => m.SubFlagValue == (int)Acks && m.Payload[1].AsString() == "poison", "the refusals");
        Assert.All(acks.Message.Payload[3].AsArray(), e => Assert.Contains("out of range", e.AsArray()[1].AsString(), StringComparison.Ordinal));
        Assert.All(KeyHashes.Methods, m => Assert.Null(owner.PeekLocalForTest(m, positions[(int)m])));
    }

    [Fact]
    public async Task Malformed_batches_are_not_answered_and_the_connection_keeps_serving()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (keyBytes, _, raw) = await RawPeerAtOwnerAsync(ring);
        await using var __ = raw;
        var ballot = new EntryVersion(5, "zzzz").ToMsgValue();
        MsgValue[] Batch(string id, MsgValue key, MsgValue methods) => [Accepts, id, 1L, key, "v", ballot, ballot, MsgValue.Nil, methods];

        await raw.SendMessageAsync(MainFlag.Whisper, Batch("method-out-of-range", MsgValue.Bin(keyBytes), MsgValue.Array(0L, 9L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("method-twice", MsgValue.Bin(keyBytes), MsgValue.Array(1L, 1L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("no-methods", MsgValue.Bin(keyBytes), MsgValue.Array()));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("key-not-bin", "a string", MsgValue.Array(0L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("well-formed", MsgValue.Bin(keyBytes), MsgValue.Array(0L)));

        // One connection's messages are handled in order: once the last is answered, none before it will be.
        await raw.WaitForAsync(m => m.SubFlagValue == (int)Acks && m.Payload[1].AsString() == "well-formed", "the answer to the well-formed batch");
        var otherAcks = raw.WhenReceivedAsync(m => m.SubFlagValue == (int)Acks && m.Payload[1].AsString() != "well-formed");
        Assert.False(otherAcks.IsCompleted, "a malformed batch was answered");
        Assert.False(raw.IsClosed);
    }
}
