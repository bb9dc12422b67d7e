using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// What a stranger can make a node hold or do, beyond the frame and byte budgets of MeshLimitsTests: compressed frames
/// before authentication, frames of a served py2p peer in the opt-in mode, and the connections a py2p peer's peers list
/// makes the node dial (docs/SECURITY.md).
/// </summary>
public sealed class MeshStrangerBoundsTests
{
    private const string Secret = "a-test-cluster-secret-of-enough-bytes";

    [Fact]
    public async Task Before_authentication_a_small_compressed_frame_is_not_inflated_past_the_pre_auth_frame_limit()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await node.StartAsync();
        await using var stranger = await RawPeer.ConnectAsync(node.Address);

        // A challenge and a handshake that agrees zlib, then a frame of under 4 KiB that inflates to 256 KiB: under the
        // 16 MiB frame limit, 64 times the 4 KiB pre-authentication limit.
        await stranger.SendMessageAsync(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(RandomNumberGenerator.GetBytes(MeshAuthentication.Length)));
        await stranger.SendAsync(FrameCodec.Encode(stranger.Handshake([CompressionMethod.Zlib])));
        var bomb = FrameCodec.Encode(stranger.Create(MainFlag.Whisper, (long)SubFlag.Whisper, MsgValue.Bin(new byte[256 * 1024])), CompressionMethod.Zlib);
        Assert.True(bomb.Length < 4096, $"the compressed frame is {bomb.Length} bytes, inside the pre-authentication frame limit of 4096");
        await stranger.SendAsync(bomb);

        await stranger.WaitClosedAsync("a frame that inflates past the pre-authentication limit closes the connection");
        Assert.Equal(1, node.GetStatistics().BadFrames);
    }

    [Fact]
    public async Task A_py2p_peer_served_without_authentication_is_held_to_its_own_frame_limit()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret, Security = MeshSecurity.AllowUnauthenticated, MaxUnauthenticatedFrameLength = 64 * 1024 });
        await node.StartAsync();
        await using var py2p = await RawPeer.ConnectAsync(node.Address);
        await py2p.HandshakeAsync(node);

        // Under the limit: served.
        await py2p.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, MsgValue.Bin(new byte[32 * 1024]));
        await py2p.SendMessageAsync(MainFlag.Ping, "under");
        await py2p.WaitForAsync(m => m.Type == MainFlag.Pong, "the node answers a ping after a frame under the limit");

        // Over it (and far under MaxFrameLength): the connection closes, and the node keeps serving others.
        await py2p.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, MsgValue.Bin(new byte[128 * 1024]));
        await py2p.WaitClosedAsync("a frame over MaxUnauthenticatedFrameLength closes the connection");
        Assert.True(node.GetStatistics().BadFrames >= 1);

        await using var next = await RawPeer.ConnectAsync(node.Address);
        await next.HandshakeAsync(node);
    }

    [Fact]
    public void The_unauthenticated_frame_limit_is_validated()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new MeshOptions { MaxUnauthenticatedFrameLength = 100 }.Validate());
        Assert.Contains("MaxUnauthenticatedFrameLength", e.Message);
        Assert.Contains("at least 1024", e.Message);
    }

    /// <summary>
    /// A py2p peer (unauthenticated, opt-in mode) names an address in its peers list; the node dials it. Were the node
    /// to challenge and prove the secret there, a stranger that named its own address could pass the node's proof on
    /// to another node of the cluster. The node dials such an address as py2p would: no challenge, no proof.
    /// </summary>
    [Fact]
    public async Task An_address_named_by_an_unauthenticated_peer_is_dialled_without_challenge_or_proof()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret, Security = MeshSecurity.AllowUnauthenticated });
        await node.StartAsync();
        await using var py2p = await RawPeer.ConnectAsync(node.Address);
        await py2p.HandshakeAsync(node);

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var namedId = NodeIdentity.NodeId("127.0.0.1", port, RawPeer.ChordProtocolId, "named-" + Guid.NewGuid().ToString("N"));
            await py2p.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Peers, MsgValue.Array(MsgValue.Array(MsgValue.Array("127.0.0.1", (long)port), MsgValue.BinAscii(namedId))));

            await using var dialled = await RawPeer.AcceptAsync(listener);
            var first = await dialled.WaitForAsync(_ => true, "the node's first frame on the connection it dialled");
            Assert.True(first.Message.Is(SubFlag.Handshake), $"the first frame is the handshake, not a challenge: {first.Message}");

            // Answer as one of our nodes would (challenge, then handshake as the named id): the node must not prove.
            await dialled.SendAsync(FrameCodec.Encode(Message.Create(MainFlag.Whisper, namedId, DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(RandomNumberGenerator.GetBytes(MeshAuthentication.Length)))));
            await dialled.SendAsync(FrameCodec.Encode(Message.Create(MainFlag.Whisper, namedId, DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                (long)SubFlag.Handshake, MsgValue.BinAscii(namedId), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array("127.0.0.1", (long)port), MsgValue.Array())));

            // Served as a py2p peer: the peers list follows admission, and frames keep their order, so a proof would
            // have come before it.
            await dialled.WaitForAsync(m => m.Is(SubFlag.Peers), "the node serves the dialled peer (its peers list)");
            Assert.DoesNotContain(dialled.Frames, f => f.Message.SubFlagValue is MeshAuthentication.ChallengeFlag or MeshAuthentication.ProofFlag);
            Assert.True(node.GetPeer(namedId) is { IsAuthenticated: false }, "the dialled peer is served unauthenticated");
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task A_node_proves_the_secret_only_to_the_node_it_dialled_for()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await node.StartAsync();
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var expected = NodeIdentity.NodeId("127.0.0.1", port, RawPeer.ChordProtocolId, "expected");
            var dial = node.ConnectAsync(new PeerAddress("127.0.0.1", port), expected);
            await using var dialled = await RawPeer.AcceptAsync(listener);
            await dialled.WaitForAsync(m => m.Is(SubFlag.Handshake), "the node's handshake");

            var other = NodeIdentity.NodeId("127.0.0.1", port, RawPeer.ChordProtocolId, "someone-else");
            await dialled.SendAsync(FrameCodec.Encode(Message.Create(MainFlag.Whisper, other, DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(RandomNumberGenerator.GetBytes(MeshAuthentication.Length)))));
            await dialled.SendAsync(FrameCodec.Encode(Message.Create(MainFlag.Whisper, other, DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                (long)SubFlag.Handshake, MsgValue.BinAscii(other), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array("127.0.0.1", (long)port), MsgValue.Array())));

            await Assert.ThrowsAsync<MeshConnectException>(() => dial.WaitAsync(Eventually.Deadline));
            await dialled.WaitClosedAsync("the node closes a connection that answered as another node");
            Assert.DoesNotContain(dialled.Frames, f => f.Message.SubFlagValue == MeshAuthentication.ProofFlag);
        }
        finally
        {
            listener.Stop();
        }
    }
}
