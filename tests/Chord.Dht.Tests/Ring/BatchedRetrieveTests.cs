using Chord.Dht.Ring;
using Chord.Dht.Tests.Durability;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// A read asks the positions one node owns in one <c>retrieves</c> frame and gets one <c>values</c> frame back
/// (docs/PROTOCOL-EXTENSIONS.md); a node whose hello names an older extension version gets each retrieve alone; a
/// receiver answers only for positions it owns.
/// </summary>
[Collection(FaultScenarioCollection.Name)]
public sealed class BatchedRetrieveTests
{
    private const long Retrieves = 0x3C;
    private const long Values = 0x3D;

    [Fact]
    public async Task A_read_asks_the_positions_one_node_owns_in_one_batch_and_decides_on_their_answers()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var reader = ring.Nodes.First(n => n != owner);
        await owner.SetAsync(key, "batched");

        var before = reader.BatchedRetrieves;
        Assert.Equal("batched", (await reader.GetAsync(key)).AsString());

        // The owner's three positions come first (the node with the most of them) and go in one frame.
        Assert.True(reader.BatchedRetrieves - before >= 3, $"{reader.BatchedRetrieves - before} positions were asked in batches");
    }

    [Fact]
    public async Task Nodes_whose_hello_names_extension_version_2_get_each_retrieve_alone()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.HelloVersionForTest = 2);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var reader = ring.Nodes.First(n => n != owner);
        await owner.SetAsync(key, "alone");

        Assert.Equal("alone", (await reader.GetAsync(key)).AsString());
        Assert.Equal(0, reader.BatchedRetrieves);
    }

    [Fact]
    public async Task A_batch_that_is_lost_is_asked_again_position_by_position_and_the_read_decides()
    {
        await using var ring = await RingTestCluster.StartAsync(3, configure: o => o.AttemptTimeout = TimeSpan.FromMilliseconds(300));
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(ring);
        var reader = ring.Nodes.First(n => n != owner);
        await owner.SetAsync(key, "asked again");

        // The owner's positions are three of five: no read decides on answers without one of them (it would commit
        // what it found instead, a prepare round).
        owner.DropRequestsForTest = 1;
        var prepares = reader.RegisterPrepareRounds;
        Assert.Equal("asked again", (await reader.GetAsync(key)).AsString());

        Assert.True(Volatile.Read(ref owner.DropRequestsForTest) <= 0, "the owner never received the batch it was to drop");
        Assert.True(reader.BatchedRetrieves >= 3);
        Assert.Equal(prepares, reader.RegisterPrepareRounds); // decided on the positions asked again alone
    }

    [Fact]
    public async Task A_batch_is_answered_for_the_positions_its_receiver_owns_and_nil_for_the_others()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (keyBytes, owner, raw) = await BatchedAcceptTests.RawPeerAtOwnerAsync(ring);
        await using var _ = raw;
        await owner.SetAsync(keyBytes, "held");
        var positions = KeyHashes.All(keyBytes);
        var owned = KeyHashes.Methods.Select(m => owner.Find(positions[(int)m])!.Id == owner.Id).ToArray();
        Assert.Contains(false, owned); // a key on one node only would not test the nil answers

        HashMethod[] order = [(HashMethod)4, (HashMethod)0, (HashMethod)3, (HashMethod)1, (HashMethod)2]; // entries follow the request's order
        await raw.SendMessageAsync(MainFlag.Whisper, [Retrieves, "batch-1", 1L, MsgValue.Bin(keyBytes), MsgValue.Array(order.Select(m => MsgValue.From((long)m)))]);

        var values = await raw.WaitForAsync(m => m.SubFlagValue == (int)Values && m.Payload[1].AsString() == "batch-1", "the owner's values");
        var entries = values.Message.Payload[3].AsArray();
        Assert.Equal(5, entries.Length);
        for (var n = 0; n < order.Length; n++)
        {
            var method = order[n];
            if (owned[(int)method])
            {
                var entry = entries[n].AsArray();
                Assert.Equal(MsgValue.Str("held"), entry[0]);
                Assert.Equal(owner.PeekLocalForTest(method, positions[(int)method])!.Value.Version, EntryVersion.TryRead(entry[1], out var version) ? version : null);
                Assert.False(entry[3].AsBool(), $"{method}: the owner's own acceptor state is no copy");
            }
            else
            {
                Assert.True(entries[n].IsNil, $"{method}: {entries[n]}");
            }
        }
    }

    [Fact]
    public async Task Malformed_batches_of_retrieves_are_not_answered_and_the_connection_keeps_serving()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var (key, _, raw) = await BatchedAcceptTests.RawPeerAtOwnerAsync(ring);
        await using var __ = raw;
        var keyBytes = MsgValue.Bin(key);
        MsgValue[] Batch(string id, MsgValue key, MsgValue methods) => [Retrieves, id, 1L, key, methods];

        await raw.SendMessageAsync(MainFlag.Whisper, Batch("method-out-of-range", keyBytes, MsgValue.Array(0L, 9L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("method-twice", keyBytes, MsgValue.Array(1L, 1L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("no-methods", keyBytes, MsgValue.Array()));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("key-not-bin", "a string", MsgValue.Array(0L)));
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("empty-key", MsgValue.Bin([]), MsgValue.Array(0L)));
        await raw.SendMessageAsync(MainFlag.Whisper, [Retrieves, "too-short", 1L, keyBytes]);
        await raw.SendMessageAsync(MainFlag.Whisper, Batch("well-formed", keyBytes, MsgValue.Array(0L)));

        // One connection's messages are handled in order: once the last is answered, none before it will be.
        await raw.WaitForAsync(m => m.SubFlagValue == (int)Values && m.Payload[1].AsString() == "well-formed", "the answer to the well-formed batch");
        var otherValues = raw.WhenReceivedAsync(m => m.SubFlagValue == (int)Values && m.Payload[1].AsString() != "well-formed");
        Assert.False(otherValues.IsCompleted, "a malformed batch was answered");
        Assert.False(raw.IsClosed);
    }
}
