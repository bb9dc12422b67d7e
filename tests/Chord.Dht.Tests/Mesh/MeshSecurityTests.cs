using System.Security.Cryptography;
using System.Text;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// The authenticated mesh (issue 13, docs/SECURITY.md): peers prove the cluster secret with an HMAC challenge–response
/// before anything else is processed; strangers are refused with one warning naming their address.
/// </summary>
public class MeshSecurityTests
{
    private const string Secret = "a-cluster-secret-of-32-bytes-abc";
    private const string OtherSecret = "another-secret-also-long-enough!";

    [Fact]
    public async Task Nodes_that_share_the_secret_authenticate_each_other_and_talk()
    {
        await using var a = new MeshNode(new MeshOptions { ClusterSecret = Secret, MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { ClusterSecret = Secret, MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        var inbox = new Inbox(a);

        var link = await b.ConnectAsync(a.Address);
        await Eventually.UntilAsync(() => a.GetPeer(b.Id) is not null, "a serves b");

        Assert.True(link.IsAuthenticated);
        Assert.True(a.GetPeer(b.Id)!.IsAuthenticated);
        await b.WhisperAsync(a.Id, "hello");
        await Eventually.UntilAsync(() => inbox.Count(b.Id, "hello") == 1, "a received b's whisper");
        Assert.Equal(0, a.GetStatistics().RefusedPeers);
    }

    [Fact]
    public async Task A_node_with_another_secret_is_refused_with_one_warning_naming_its_address()
    {
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret }, logs);
        await using var stranger = new MeshNode(new MeshOptions { ClusterSecret = OtherSecret });
        await node.StartAsync();
        await stranger.StartAsync();

        var e = await Assert.ThrowsAsync<MeshConnectException>(() => stranger.ConnectAsync(node.Address));

        Assert.Contains("authentication", e.Message, StringComparison.Ordinal);
        await Eventually.UntilAsync(() => node.GetStatistics() is { Peers: 0, Awaiting: 0, OpenConnections: 0, RefusedPeers: 1 }, "the node refused the stranger and closed its connection");
        Assert.Null(node.GetPeer(stranger.Id));
        var refusals = logs.AtLeast(LogLevel.Warning).Where(l => l.Text.Contains("Refused peer", StringComparison.Ordinal)).ToList();
        var refusal = Assert.Single(refusals);
        Assert.Contains("127.0.0.1:", refusal.Text, StringComparison.Ordinal); // its remote address
        Assert.Contains("does not know this cluster's secret", refusal.Text, StringComparison.Ordinal);
        Assert.Null(refusal.Exception);
        // No second line about the same close.
        Assert.DoesNotContain(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Closing connection", StringComparison.Ordinal));
    }

    [Fact]
    public async Task In_required_mode_a_py2p_style_peer_is_refused_and_nothing_it_sends_is_delivered()
    {
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions(), logs);
        await node.StartAsync();
        var inbox = new Inbox(node);
        await using var raw = await RawPeer.ConnectAsync(node.Address);

        // py2p's opening: a handshake (no challenge), then at once an application whisper and a broadcast.
        await raw.SendAsync(FrameCodec.Encode(raw.Handshake()));
        await raw.TrySendAsync(FrameCodec.Encode(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "sneaked")));
        await raw.TrySendAsync(FrameCodec.Encode(raw.Create(MainFlag.Broadcast, (long)SubFlag.Broadcast, "sneaked")));

        await raw.WaitClosedAsync("the node closed the unauthenticated peer");
        Assert.Null(node.GetPeer(raw.Id));
        Assert.Equal(0, inbox.CountText("sneaked"));
        Assert.Equal(1, node.GetStatistics().RefusedPeers);
        Assert.DoesNotContain(raw.Frames, f => f.Message.Is(SubFlag.Peers)); // it never saw our routing table
        Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.Contains("Refused peer", StringComparison.Ordinal) && l.Text.Contains("did not authenticate", StringComparison.Ordinal));
    }

    [Fact]
    public async Task In_required_mode_a_peer_that_never_proves_the_secret_is_closed_at_the_handshake_timeout_with_one_line_each()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions { TimeProvider = time }, logs);
        await node.StartAsync();

        // One says nothing at all; the other opens as our nodes do (challenge, handshake) and never sends its proof.
        await using var silent = await RawPeer.ConnectAsync(node.Address);
        await using var unproven = await RawPeer.ConnectAsync(node.Address);
        await unproven.SendMessageAsync(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(RandomNumberGenerator.GetBytes(MeshAuthentication.Length)));
        await unproven.SendAsync(FrameCodec.Encode(unproven.Handshake()));
        await unproven.WaitForAsync(m => m.Is((SubFlag)MeshAuthentication.ProofFlag), "the node's own proof (so it has read the handshake)");
        await Eventually.UntilAsync(() => node.GetStatistics().Awaiting == 2, "both connections to wait for their authentication");

        // Just short of the timeout both are still open; past it, the maintenance pass closes both.
        time.Advance(node.Options.HandshakeTimeout - TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(logs.Entries, l => l.Text.StartsWith("Closing connection", StringComparison.Ordinal)); // the pass logs as it closes
        Assert.False(silent.IsClosed);
        Assert.False(unproven.IsClosed);
        time.Advance(TimeSpan.FromSeconds(2));
        await silent.WaitClosedAsync("the silent connection is closed at the handshake timeout");
        await unproven.WaitClosedAsync("the connection that never proved is closed at the handshake timeout");

        // The raw peers can see their close before the node has counted it (a clean-clone CI run read Awaiting 1 here).
        await Eventually.UntilAsync(() => node.GetStatistics() is { Awaiting: 0, RefusedPeers: 2 }, "the node to count both connections closed and refused");
        Assert.Null(node.GetPeer(unproven.Id));
        var closes = logs.AtLeast(LogLevel.Warning).Where(l => l.Text.StartsWith("Closing connection", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, closes.Count);
        Assert.Single(closes, l => l.Text.Contains("(no handshake) at 127.0.0.1:", StringComparison.Ordinal) && l.Text.EndsWith("it sent no handshake within 10 s", StringComparison.Ordinal));
        Assert.Single(closes, l => l.Text.Contains(unproven.Id + " at 127.0.0.1:", StringComparison.Ordinal) && l.Text.EndsWith("it did not authenticate within 10 s", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_raw_peer_that_proves_the_secret_is_served_and_one_with_a_wrong_or_replayed_proof_is_not()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await node.StartAsync();

        await using (var good = await RawPeer.ConnectAsync(node.Address))
        {
            await good.AuthenticatedHandshakeAsync(node, Secret);
        }

        await using (var wrong = await RawPeer.ConnectAsync(node.Address))
        {
            await wrong.AuthenticatedHandshakeAsync(node, OtherSecret, expectAccepted: false);
            await wrong.WaitClosedAsync("a proof made with another secret closes the connection");
        }

        // A proof that was right for another connection (another challenge) is refused: the nonces are in the MAC.
        await using var first = await RawPeer.ConnectAsync(node.Address);
        var firstChallenge = await first.WaitForAsync(m => m.SubFlagValue == MeshAuthentication.ChallengeFlag, "the first challenge");
        await using var replay = await RawPeer.ConnectAsync(node.Address);
        var ourNonce = RandomNumberGenerator.GetBytes(32);
        var stale = MeshAuthentication.Proof(Encoding.UTF8.GetBytes(Secret), RawPeer.ChordProtocolId, MeshAuthentication.Role.Dialler, replay.Id, node.Id, firstChallenge.Message.Payload[1].AsBytes().Span, ourNonce);
        await replay.SendMessageAsync(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(ourNonce));
        await replay.SendAsync(FrameCodec.Encode(replay.Handshake()));
        await replay.SendMessageAsync(MainFlag.Whisper, (long)MeshAuthentication.ProofFlag, MsgValue.Bin(stale));
        await replay.WaitClosedAsync("a proof over another connection's challenge is refused");

        Assert.Equal(2, node.GetStatistics().RefusedPeers);
        Assert.Null(node.GetPeer(replay.Id));
    }

    [Fact]
    public void A_proof_depends_on_the_roles_the_ids_both_nonces_and_the_secret()
    {
        var secret = Encoding.UTF8.GetBytes(Secret);
        byte[] n1 = [.. Enumerable.Repeat((byte)1, 32)];
        byte[] n2 = [.. Enumerable.Repeat((byte)2, 32)];
        const MeshAuthentication.Role d = MeshAuthentication.Role.Dialler;
        var proof = MeshAuthentication.Proof(secret, "p", d, "A", "B", n1, n2);

        Assert.Equal(32, proof.Length);
        Assert.True(MeshAuthentication.Verify(proof, MeshAuthentication.Proof(secret, "p", d, "A", "B", n1, n2)));
        Assert.NotEqual(proof, MeshAuthentication.Proof(secret, "p", d, "B", "A", n2, n1)); // reflected back: the other role
        Assert.NotEqual(proof, MeshAuthentication.Proof(secret, "p", MeshAuthentication.Role.Acceptor, "A", "B", n1, n2)); // relayed: the other side of a connection
        Assert.NotEqual(proof, MeshAuthentication.Proof(secret, "p", d, "A", "B", n2, n1));
        Assert.NotEqual(proof, MeshAuthentication.Proof(secret, "p", d, "A", "C", n1, n2));
        Assert.NotEqual(proof, MeshAuthentication.Proof(secret, "q", d, "A", "B", n1, n2));
        Assert.NotEqual(proof, MeshAuthentication.Proof(Encoding.UTF8.GetBytes(OtherSecret), "p", d, "A", "B", n1, n2));
        Assert.False(MeshAuthentication.Verify(proof.AsSpan(0, 31), proof));
    }

    /// <summary>
    /// The relay: a stranger dials two nodes of the cluster, claims to each that it is the other, and passes each
    /// node's challenge and proof across. Version 1 of the proof had no roles, so node B's proof (for "A", over A's
    /// nonce) was exactly what A expected from "B", and the stranger was served by A as B. The prover's role is now in
    /// the MAC: B proved as the acceptor of its connection, A expects the dialler's proof of its own.
    /// </summary>
    [Fact]
    public async Task A_stranger_cannot_relay_one_nodes_proof_to_another_and_be_served_as_that_node()
    {
        await using var a = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await using var b = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await a.StartAsync();
        await b.StartAsync();

        await using var toA = await RawPeer.ConnectAsync(a.Address);
        await using var toB = await RawPeer.ConnectAsync(b.Address);
        var challengeA = (await toA.WaitForAsync(m => m.SubFlagValue == MeshAuthentication.ChallengeFlag, "A's challenge")).Message.Payload[1];
        var challengeB = (await toB.WaitForAsync(m => m.SubFlagValue == MeshAuthentication.ChallengeFlag, "B's challenge")).Message.Payload[1];

        // To A, claim to be B, challenging with B's nonce; to B, claim to be A, challenging with A's nonce.
        await toA.SendAsync(FrameCodec.Encode(Impersonate(b.Id, MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, challengeB)));
        await toA.SendAsync(FrameCodec.Encode(Impersonate(b.Id, MainFlag.Whisper, (long)SubFlag.Handshake, MsgValue.BinAscii(b.Id), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array(b.Address.Host, b.Address.Port), MsgValue.Array())));
        await toB.SendAsync(FrameCodec.Encode(Impersonate(a.Id, MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, challengeA)));
        await toB.SendAsync(FrameCodec.Encode(Impersonate(a.Id, MainFlag.Whisper, (long)SubFlag.Handshake, MsgValue.BinAscii(a.Id), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array(a.Address.Host, a.Address.Port), MsgValue.Array())));

        // B proves "itself" to "A" over A's nonce; the stranger hands that proof to A as B's.
        var proofOfB = (await toB.WaitForAsync(m => m.SubFlagValue == MeshAuthentication.ProofFlag, "B's proof")).Message.Payload[1];
        await toA.SendAsync(FrameCodec.Encode(Impersonate(b.Id, MainFlag.Whisper, (long)MeshAuthentication.ProofFlag, proofOfB)));

        await toA.WaitClosedAsync("A refuses the relayed proof");
        Assert.Null(a.GetPeer(b.Id));
        Assert.True(a.GetStatistics().RefusedPeers >= 1, "A counts the relay as a refused peer");
    }

    private static Message Impersonate(string id, MainFlag type, params MsgValue[] payload) =>
        Message.Create(type, id, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), payload);

    [Fact]
    public async Task In_the_opt_in_mode_a_py2p_peer_is_served_unauthenticated_and_a_wrong_secret_is_still_refused()
    {
        await using var node = new MeshNode(new MeshOptions { ClusterSecret = Secret, Security = MeshSecurity.AllowUnauthenticated });
        await node.StartAsync();

        await using var py2p = await RawPeer.ConnectAsync(node.Address);
        await py2p.HandshakeAsync(node);
        Assert.False(node.GetPeer(py2p.Id)!.IsAuthenticated);

        await using var ours = new MeshNode(new MeshOptions { ClusterSecret = Secret });
        await ours.StartAsync();
        Assert.True((await ours.ConnectAsync(node.Address)).IsAuthenticated);
        await Eventually.UntilAsync(() => node.GetPeer(ours.Id) is { IsAuthenticated: true }, "the node serves our node as authenticated");

        await using var stranger = new MeshNode(new MeshOptions { ClusterSecret = OtherSecret, Security = MeshSecurity.AllowUnauthenticated });
        await stranger.StartAsync();
        await Assert.ThrowsAsync<MeshConnectException>(() => stranger.ConnectAsync(node.Address));
        // The stranger may give up (it refuses our proof too) before the node has read its proof: wait for that.
        await Eventually.UntilAsync(() => node.GetStatistics().RefusedPeers == 1, "the node refused the stranger's proof");
        Assert.Null(node.GetPeer(stranger.Id));
    }

    [Fact]
    public async Task An_unauthenticated_peer_claiming_a_served_nodes_id_does_not_displace_it()
    {
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var ours = new MeshNode(new MeshOptions());
        await node.StartAsync();
        await ours.StartAsync();
        await ours.ConnectAsync(node.Address);
        await Eventually.UntilAsync(() => node.GetPeer(ours.Id) is { IsAuthenticated: true }, "our node is served");
        var link = node.GetPeer(ours.Id);

        await using var impostor = await RawPeer.ConnectAsync(node.Address);
        var handshake = Message.Create(MainFlag.Whisper, ours.Id, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), (long)SubFlag.Handshake,
            MsgValue.BinAscii(ours.Id), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array("127.0.0.1", 1L), MsgValue.Array());
        await impostor.SendAsync(FrameCodec.Encode(handshake));

        await impostor.WaitClosedAsync("the node closed the impostor's connection as the duplicate");
        Assert.Same(link, node.GetPeer(ours.Id));
    }

    [Fact]
    public async Task Two_authenticated_nodes_dialling_each_other_at_once_keep_one_connection()
    {
        for (var round = 0; round < 10; round++)
        {
            await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
            await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
            await a.StartAsync();
            await b.StartAsync();
            var inboxA = new Inbox(a);
            var inboxB = new Inbox(b);

            var both = await Task.WhenAll(a.ConnectAsync(b.Address, b.Id), b.ConnectAsync(a.Address, a.Id));

            Assert.Equal(b.Id, both[0].Id);
            Assert.Equal(a.Id, both[1].Id);
            await Eventually.UntilAsync(
                () => a.GetStatistics() is { Peers: 1, OpenConnections: 1 } && b.GetStatistics() is { Peers: 1, OpenConnections: 1 },
                $"round {round}: each node keeps exactly one connection to the other");
            var (ab, ba) = (a.GetPeer(b.Id)!, b.GetPeer(a.Id)!);
            Assert.True(ab.IsAuthenticated && ba.IsAuthenticated);
            Assert.NotEqual(ab.IsOutgoing, ba.IsOutgoing); // the same connection, seen from its two ends
            await a.WhisperAsync(b.Id, "ping-" + round);
            await b.WhisperAsync(a.Id, "pong-" + round);
            await Eventually.UntilAsync(() => inboxB.Count(a.Id, "ping-" + round) == 1 && inboxA.Count(b.Id, "pong-" + round) == 1,
                $"round {round}: whispers go both ways on the surviving connection");
        }
    }

    [Fact]
    public void A_cluster_secret_shorter_than_16_bytes_is_refused_with_a_message_saying_what_is_allowed()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new MeshNode(new MeshOptions { ClusterSecret = "too-short" }));
        Assert.Contains("ClusterSecret is 9 bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("at least 16 bytes", e.Message, StringComparison.Ordinal);
        _ = new MeshNode(new MeshOptions { ClusterSecret = "exactly-16-bytes" });
        var mode = Assert.ThrowsAny<ArgumentException>(() => new MeshNode(new MeshOptions { Security = (MeshSecurity)7 }));
        Assert.Contains("Required, AllowUnauthenticated, Off", mode.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_secret_the_node_uses_the_development_secret_and_says_so()
    {
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions(), logs);
        await using var peer = new MeshNode(new MeshOptions());
        await node.StartAsync();
        await peer.StartAsync();

        Assert.True((await peer.ConnectAsync(node.Address)).IsAuthenticated); // both on the development secret
        Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.Contains("development cluster secret", StringComparison.Ordinal));
    }
}
