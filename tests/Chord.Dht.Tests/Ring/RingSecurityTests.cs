using Microsoft.Extensions.Logging;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// What a peer that does not know the cluster secret can do to a ring (issue 13, docs/SECURITY.md): nothing in the
/// default mode; in the py2p opt-in, only what py2p's own messages do.
/// </summary>
public class RingSecurityTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task In_required_mode_an_outsider_can_neither_store_nor_retrieve_nor_join_and_the_ring_keeps_serving()
    {
        var logs = new LogCapture();
        await using var ring = await RingTestCluster.StartAsync(2, configure: o => o.KeepPlacementCopies = false, logs: logs);
        var node = ring.Nodes[0];
        var stored = node.StoredCount;
        await using var outsider = await RawPeer.ConnectAsync(node.Mesh.Address);
        var positions = RingTestData.Positions("poison");

        // A hand-written py2p session: handshake, chord meta (storing), then a store and a retrieve of each position.
        await outsider.SendAsync(FrameCodec.Encode(outsider.Handshake()));
        await outsider.TrySendAsync(FrameCodec.Encode(outsider.Create(MainFlag.Whisper, (long)SubFlag.Handshake, "0")));
        for (var i = 0; i < 5; i++)
        {
            var method = MsgValue.BinAscii(((HashMethod)i).WireName());
            var position = MsgValue.BinAscii(positions[i].ToBase58());
            await outsider.TrySendAsync(FrameCodec.Encode(outsider.Create(MainFlag.Whisper, (long)SubFlag.Store, method, position, "outsider")));
            await outsider.TrySendAsync(FrameCodec.Encode(outsider.Create(MainFlag.Whisper, (long)SubFlag.Retrieve, method, position)));
        }

        await outsider.WaitClosedAsync("the ring node closed the outsider's connection");
        Assert.Equal(stored, node.StoredCount);
        Assert.DoesNotContain(outsider.Frames, f => f.Message.Is(SubFlag.Retrieved));
        Assert.DoesNotContain(node.Members, m => m.Id == outsider.Id);
        Assert.Equal(1, node.Mesh.GetStatistics().RefusedPeers);
        // One line says why, naming the outsider's address.
        var refused = Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.Contains("did not authenticate", StringComparison.Ordinal));
        Assert.Contains(outsider.LocalEndPoint, refused.Text, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[1].GetAsync("poison"));

        await ring.Nodes[1].SetAsync("after-the-outsider", "honest");
        Assert.Equal(MsgValue.Str("honest"), await node.GetAsync("after-the-outsider"));
    }

    [Fact]
    public async Task In_the_opt_in_mode_a_py2p_peer_stores_as_py2p_does_but_its_extension_messages_are_ignored()
    {
        await using var ring = await RingTestCluster.StartAsync(2, configure: o =>
        {
            o.KeepPlacementCopies = false;
            o.Mesh.Security = MeshSecurity.AllowUnauthenticated;
        });
        var node = ring.Nodes[0];
        Assert.True(node.Mesh.GetPeer(ring.Nodes[1].Id)!.IsAuthenticated); // our own nodes still authenticate
        await using var py2p = await RawPeer.ConnectAsync(node.Mesh.Address);
        await py2p.HandshakeAsync(node.Mesh);
        Assert.False(node.Mesh.GetPeer(py2p.Id)!.IsAuthenticated);

        // Our extensions from it: a member broadcast and a hello naming a member that does not exist.
        var fake = NodeIdentity.NodeId("127.0.0.1", 9, RawPeer.ChordProtocolId, "fake");
        var entry = MsgValue.Array(MsgValue.Array("127.0.0.1", 9L), MsgValue.BinAscii(fake), true, 1L);
        await py2p.SendMessageAsync(MainFlag.Broadcast, 0x31L /* member */, entry);
        await py2p.SendMessageAsync(MainFlag.Whisper, 0x33L /* hello */, 1L, MsgValue.Array(entry));

        // py2p's own store, to a position this node owns, with trailing packets (a request id and hops) that only
        // our nodes may use: stored as py2p's store, and no acknowledgement comes back.
        var ids = ring.Nodes.Select(n => n.Id).ToList();
        var (method, position) = Enumerable.Range(0, 1000)
            .SelectMany(k => RingTestData.Positions($"py2p-{k}").Select((p, i) => ((HashMethod)i, p)))
            .First(x => RingTestData.OwnerOf(ids, x.p) == node.Id);
        await py2p.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()), "from-py2p", "req-1", 0L);
        await py2p.SendMessageAsync(MainFlag.Ping, (long)SubFlag.Ping, "after");
        await py2p.WaitForAsync(m => m.Type == MainFlag.Pong && Inbox.TextOf(m) == "after", "the pong after the messages (so they were handled)");

        await Eventually.UntilAsync(() => node.DumpData(node.Position, node.Position)[method].TryGetValue(position, out var v) && v == MsgValue.Str("from-py2p"),
            Wait, "the py2p store is applied");
        Assert.DoesNotContain(node.Members, m => m.Id == fake);
        Assert.DoesNotContain(ring.Nodes[1].Members, m => m.Id == fake);
        Assert.DoesNotContain(py2p.Frames, f => f.Message.SubFlagValue == 0x30); // no ack: to it, this was py2p's store
        Assert.False(py2p.IsClosed);
    }
}
