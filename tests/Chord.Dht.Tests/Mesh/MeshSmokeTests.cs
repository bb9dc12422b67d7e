using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

public class MeshSmokeTests
{
    [Fact]
    public async Task Two_nodes_exchange_a_broadcast_and_a_whisper()
    {
        await using var a = new MeshNode(new MeshOptions());
        await using var b = new MeshNode(new MeshOptions());
        await a.StartAsync();
        await b.StartAsync();
        var peer = await b.ConnectAsync(a.Address);
        Assert.Equal(a.Id, peer.Id);

        await b.BroadcastAsync("hello", new byte[] { 1, 2 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var got = await a.ReceiveAsync(cts.Token);
        Assert.Equal(b.Id, got.Sender);
        Assert.Equal(MsgValue.Str("hello"), got.Payload[1]);

        await a.WhisperAsync(b.Id, "psst");
        var whisper = await b.ReceiveAsync(cts.Token);
        Assert.True(whisper.Message.Is(SubFlag.Whisper));
        Assert.Equal(MsgValue.Str("psst"), whisper.Payload[1]);
    }
}

/// <summary>The in-memory transport does not bound handshakes by the wall clock (a loaded machine is no lost frame).</summary>
public class InMemoryHandshakeTests
{
    [Fact]
    public async Task In_memory_nodes_connect_whatever_the_handshake_timeout()
    {
        // One tick is far less than any handshake takes: on TCP this bound would refuse every connection.
        await using var cluster = await MeshCluster.StartAsync(12, inMemory: true, configure: o => o.HandshakeTimeout = TimeSpan.FromTicks(1));
        await cluster.JoinThroughSeedAsync();
        // Two nodes that dial each other at once keep one connection and close the other: for that moment the pair
        // may have none in its table, so wait (with a deadline) rather than look once.
        await Eventually.UntilAsync(() => cluster.Nodes.Skip(1).All(n => n.GetPeer(cluster.Nodes[0].Id) is not null),
            "every node to be connected to the seed");
    }
}

/// <summary>Two connections one node dialled to another: both ends keep the same one.</summary>
public class DuplicateConnectionTests
{
    [Fact]
    public async Task Two_dials_at_once_to_a_node_by_its_id_share_one_connection()
    {
        // One dial per node at a time: a second connection in the same direction only to drop one of the two (maybe
        // the one already carrying requests) helps nobody.
        for (var round = 0; round < 50; round++)
        {
            await using var cluster = await MeshCluster.StartAsync(2, inMemory: true);
            var (dialler, other) = (cluster.Nodes[0], cluster.Nodes[1]);

            var both = await Task.WhenAll(dialler.ConnectAsync(other.Address, other.Id), dialler.ConnectAsync(other.Address, other.Id));

            Assert.Same(both[0], both[1]);
            Assert.False(both[0].IsClosed, $"the shared connection closed (round {round})");
        }
    }

    [Fact]
    public async Task Of_two_connections_dialled_by_one_node_both_ends_keep_the_same_one_and_it_carries_answers()
    {
        // Each end admits the two in its own order; keeping "the older" at each end kept different ones, and each end
        // then wrote only on the connection the other was closing, so no answer came back for a minute. The orders
        // differ rarely: without the shared rule, about one round in fifty to a hundred failed.
        for (var round = 0; round < 300; round++)
        {
            await using var cluster = await MeshCluster.StartAsync(2, inMemory: true);
            var (dialler, other) = (cluster.Nodes[0], cluster.Nodes[1]);

            await Task.WhenAll(dialler.ConnectAsync(other.Address), dialler.ConnectAsync(other.Address));

            // Until both ends have admitted both, one may still route on the connection it is about to drop: a ping
            // on it ends with the connection, and the next look finds the survivor.
            await Eventually.UntilAsync(async () =>
            {
                if (dialler.GetPeer(other.Id) is not { } mine || other.GetPeer(dialler.Id) is not { } theirs || !mine.LocalNonce.AsSpan().SequenceEqual(theirs.RemoteNonce))
                {
                    return false;
                }

                using var pong = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    await mine.PingAsync(pong.Token);
                    await theirs.PingAsync(pong.Token);
                    return true;
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(10), $"both ends to route on the same connection, and answers to come back on it (round {round})");
        }
    }
}
