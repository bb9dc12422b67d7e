using System.Numerics;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// One acceptor per position, never two. Fencing: a node that turns storing serves its positions only once its
/// successor, which answered for them until then, has said it stopped. And no node answers for a position whose owner
/// it cannot reach.
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
    public async Task Joining_returns_once_the_successor_has_answered_and_the_node_serves()
    {
        await using var cluster = await RingTestCluster.StartAsync(3, inMemory: true);

        var newcomer = await cluster.AddNodeAsync();

        Assert.True(newcomer.IsServing, "JoinAsync returned before the node served its positions");
    }

    [Fact]
    public async Task A_new_member_takes_no_write_for_its_positions_until_its_successor_has_stopped_answering_for_them()
    {
        await using var cluster = await RingTestCluster.StartAsync(2, inMemory: true, configure: o =>
        {
            o.RequestTimeout = TimeSpan.FromSeconds(2); // how long JoinAsync waits for the answer that will not come
            o.AttemptTimeout = TimeSpan.FromMilliseconds(200);
        });
        foreach (var node in cluster.Nodes)
        {
            node.IgnoreFencesForTest = true; // whichever is the newcomer's successor does not answer it for now
        }

        var newcomer = await cluster.AddNodeAsync();
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
            Assert.True(held is null, $"the newcomer took a write for its position before its successor answered its fence: {held}");
        }

        foreach (var node in cluster.Nodes)
        {
            node.IgnoreFencesForTest = false;
        }

        await Eventually.UntilAsync(() => newcomer.IsServing, TimeSpan.FromSeconds(30), "the newcomer to serve once its successor answers its fence");
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
        await Eventually.UntilAsync(() => node.Members.All(m => m.Id != ghost.Id), TimeSpan.FromSeconds(30), "the unreachable owner to be removed");
        Assert.Equal(0, (await node.RetrieveAsync(HashMethod.Sha384, position)).Hops);
    }
}
