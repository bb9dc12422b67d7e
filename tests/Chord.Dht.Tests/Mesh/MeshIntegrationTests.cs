using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>Meshes of several nodes in one process, grown from one seed address (issue item 5).</summary>
public class MeshIntegrationTests
{
    [Theory]
    [InlineData(2, false)]
    [InlineData(5, false)]
    [InlineData(20, false)]
    [InlineData(20, true)]
    public async Task A_broadcast_from_any_node_reaches_every_other_node_exactly_once(int count, bool inMemory)
    {
        await using var cluster = await MeshCluster.StartAsync(count, inMemory);
        await cluster.JoinThroughSeedAsync();
        await cluster.SettledAsync();
        var nodes = cluster.Nodes;
        await nodes[0].BroadcastAsync("warm-up");
        await cluster.ReceivedEverywhereAsync(nodes[0], "warm-up");

        // Every node broadcasts, three rounds, all at once.
        const int Rounds = 3;
        await Task.WhenAll(nodes.Select(async n =>
        {
            for (var round = 0; round < Rounds; round++)
            {
                await n.BroadcastAsync($"round-{round}", (long)round);
            }
        }));
        for (var round = 0; round < Rounds; round++)
        {
            foreach (var sender in nodes)
            {
                await cluster.ReceivedEverywhereAsync(sender, $"round-{round}");
            }
        }

        // Anything still in flight (a duplicate) is handled before the barrier completes.
        await cluster.BarrierAsync();
        foreach (var inbox in cluster.Inboxes)
        {
            foreach (var sender in nodes)
            {
                for (var round = 0; round < Rounds; round++)
                {
                    var expected = sender == inbox.Node ? 0 : 1;
                    Assert.True(
                        expected == inbox.Count(sender.Id, $"round-{round}"),
                        $"node {inbox.Node.Id[..8]} got round-{round} of {sender.Id[..8]} {inbox.Count(sender.Id, $"round-{round}")} times, expected {expected}");
                }
            }

            Assert.All(inbox.All.Where(m => m.Message.Type == MainFlag.Broadcast), m => Assert.True(m.Message.Is(SubFlag.Broadcast)));
        }

        // Every node dialled only the seed, so the rest of the mesh came from peers lists.
        if (count > 2)
        {
            Assert.Contains(nodes.Skip(1), n => n.Peers.Any(p => p.Id != nodes[0].Id));
        }
    }

    [Theory]
    [InlineData(2, false)]
    [InlineData(5, false)]
    [InlineData(20, true)]
    public async Task A_whisper_reaches_only_its_target(int count, bool inMemory)
    {
        await using var cluster = await MeshCluster.StartAsync(count, inMemory);
        await cluster.JoinThroughSeedAsync();
        await cluster.SettledAsync();
        var nodes = cluster.Nodes;
        var sender = nodes[^1];
        var target = nodes[0];
        Assert.NotNull(sender.GetPeer(target.Id));

        await sender.WhisperAsync(target.Id, "secret", (long)42);
        await Eventually.UntilAsync(() => cluster.InboxOf(target).Count(sender.Id, "secret") == 1, "the target got the whisper");
        await cluster.BarrierAsync();

        var got = Assert.Single(cluster.InboxOf(target).All, m => Inbox.TextOf(m.Message) == "secret");
        Assert.Equal(MainFlag.Whisper, got.Message.Type);
        Assert.True(got.Message.Is(SubFlag.Whisper));
        Assert.Equal(MsgValue.From(42L), got.Payload[2]);
        foreach (var inbox in cluster.Inboxes.Where(i => i.Node != target))
        {
            Assert.Equal(0, inbox.CountText("secret"));
        }
    }

    [Fact]
    public async Task A_node_that_goes_away_leaves_its_peers_routing_tables()
    {
        await using var cluster = await MeshCluster.StartAsync(4, inMemory: false);
        await cluster.JoinThroughSeedAsync();
        await cluster.SettledAsync();
        var leaving = cluster.Nodes[^1];
        var neighbours = cluster.Nodes.Where(n => n != leaving && n.GetPeer(leaving.Id) is not null).ToList();
        Assert.Contains(cluster.Nodes[0], neighbours);
        var disconnected = neighbours.ToDictionary(n => n, _ => new TaskCompletionSource<MeshPeer>(TaskCreationOptions.RunContinuationsAsynchronously));
        foreach (var (node, tcs) in disconnected)
        {
            node.PeerDisconnected += (_, e) =>
            {
                if (e.Peer.Id == leaving.Id)
                {
                    tcs.TrySetResult(e.Peer);
                }
            };
        }

        await leaving.DisposeAsync();

        await Eventually.UntilAsync(() => disconnected.Values.All(t => t.Task.IsCompleted), "every neighbour raised PeerDisconnected for the node that left");
        foreach (var node in neighbours)
        {
            Assert.Null(node.GetPeer(leaving.Id));
            Assert.DoesNotContain(node.Peers, p => p.Id == leaving.Id);
            Assert.True((await disconnected[node].Task).IsClosed);
        }

        // The rest still talk.
        await cluster.Nodes[0].BroadcastAsync("after-leave");
        await Eventually.UntilAsync(
            () => cluster.Inboxes.Where(i => i.Node != leaving && i.Node != cluster.Nodes[0]).All(i => i.Count(cluster.Nodes[0].Id, "after-leave") == 1),
            "the remaining nodes got a broadcast after the departure");
    }
}
