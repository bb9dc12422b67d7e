using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// Bad input from a raw socket (issue item 4): the offending connection is closed, or the message ignored, as
/// PROTOCOL.md §1, §4 and §6 say; the node keeps serving its other connections.
/// </summary>
public class MeshBadInputTests
{
    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static MsgValue RawId => MsgValue.BinAscii(NodeIdentity.NodeId("127.0.0.1", 1, RawPeer.ChordProtocolId, "x"));

    [Fact]
    public async Task A_length_header_above_the_maximum_closes_the_connection_before_any_body_arrives()
    {
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated, MaxFrameLength = 1024 });
        var before = check.Node.GetStatistics();
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);

        await raw.SendAsync(MeshFrames.Header(1024 * 1024)); // the header alone: not one body byte follows

        await raw.WaitClosedAsync("the node closed a connection whose header announced 1 MiB over a 1 KiB maximum");
        var after = check.Node.GetStatistics();
        Assert.Equal(before.BadFrames + 1, after.BadFrames);
        Assert.Equal(before.Exceptions, after.Exceptions);
        await Eventually.UntilAsync(() => check.Node.GetStatistics().Awaiting == 0, "the closed connection left the node");
        await check.AssertStillServingAsync();
    }

    [Fact]
    public async Task A_header_exactly_at_the_maximum_is_not_refused()
    {
        // The boundary: MaxFrameLength itself is allowed, so a frame of exactly that length is waited for, not refused.
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated, MaxFrameLength = 1024 });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var filler = new string('f', 1024);
        var message = raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "at-max", filler);
        var size = FrameCodec.DigestLength + message.Packed.Length;
        message = raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "at-max", filler[..(1024 - (size - 1024))]);
        Assert.Equal(1024, FrameCodec.DigestLength + message.Packed.Length);

        await raw.SendAsync(FrameCodec.Encode(message));

        await Eventually.UntilAsync(() => check.NodeInbox.Count(raw.Id, "at-max") == 1, "a frame of exactly MaxFrameLength bytes was delivered");
        Assert.False(raw.IsClosed);
        Assert.Equal(0, check.Node.GetStatistics().BadFrames);
    }

    public static TheoryData<string, bool> MalformedFrames()
    {
        var data = new TheoryData<string, bool>();
        foreach (var kind in new[]
        {
            "digest-mismatch", "garbage-msgpack", "sender-as-str", "too-few-packets", "unknown-main-flag", "time-as-str",
            "not-an-array", "trailing-bytes", "truncated-msgpack", "invalid-utf8", "empty-body", "digest-only",
        })
        {
            data.Add(kind, false);
            data.Add(kind, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(MalformedFrames))]
    public async Task A_malformed_frame_closes_only_its_connection(string kind, bool afterHandshake)
    {
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        if (afterHandshake)
        {
            // Advertise every method, so the node also tries each decompressor on the bad bytes.
            await raw.HandshakeAsync(check.Node, Compression.Supported);
        }

        var before = check.Node.GetStatistics();
        await raw.SendAsync(BadFrame(kind));

        await raw.WaitClosedAsync($"the node closed the connection that sent a {kind} frame");
        var after = check.Node.GetStatistics();
        Assert.Equal(before.BadFrames + 1, after.BadFrames);
        Assert.Equal(before.Exceptions, after.Exceptions);
        await Eventually.UntilAsync(() => check.Node.GetPeer(raw.Id) is null && check.Node.GetStatistics().Awaiting == 0, "the closed connection left the node");
        await check.AssertStillServingAsync();
    }

    [Fact]
    public async Task A_handshake_from_another_subnet_is_refused_both_ways()
    {
        await using var node = new MeshNode(new MeshOptions());
        await using var other = new MeshNode(new MeshOptions { Subnet = "other" });
        await node.StartAsync();
        await other.StartAsync();
        Assert.NotEqual(node.ProtocolId, other.ProtocolId);

        await Assert.ThrowsAsync<MeshConnectException>(() => other.ConnectAsync(node.Address));
        await Assert.ThrowsAsync<MeshConnectException>(() => node.ConnectAsync(other.Address));

        await Eventually.UntilAsync(
            () => node.GetStatistics() is { Peers: 0, Awaiting: 0 } && other.GetStatistics() is { Peers: 0, Awaiting: 0 },
            "both refused connections are gone from both nodes");
        Assert.Null(node.GetPeer(other.Id));
        Assert.Null(other.GetPeer(node.Id));
        Assert.Empty(node.Peers);
        Assert.Empty(other.Peers);
    }

    [Fact]
    public async Task A_raw_handshake_with_another_protocol_id_is_closed()
    {
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);

        await raw.SendAsync(FrameCodec.Encode(raw.Handshake(protocolId: NodeIdentity.ProtocolId("other"))));

        await raw.WaitClosedAsync("the node closed a connection whose handshake named another protocol");
        Assert.Null(check.Node.GetPeer(raw.Id));
        await check.AssertStillServingAsync();
    }

    [Fact]
    public async Task An_unknown_sub_flag_in_a_whisper_is_ignored_and_the_connection_stays_open()
    {
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var claimed = new List<string>();
        check.Node.RegisterHandler(m =>
        {
            lock (claimed)
            {
                claimed.Add($"{m.Message.SubFlagValue}:{Inbox.TextOf(m.Message)}");
            }

            return ValueTask.FromResult(false);
        });

        await raw.SendMessageAsync(MainFlag.Whisper, 0x30, "junk");
        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "after-junk");

        // Same connection, handled in order: once the second is delivered, the first has been handled.
        await Eventually.UntilAsync(() => check.NodeInbox.Count(raw.Id, "after-junk") == 1, "the valid whisper after the unknown sub-flag was delivered");
        Assert.Equal(0, check.NodeInbox.CountText("junk"));
        Assert.False(raw.IsClosed);
        Assert.NotNull(check.Node.GetPeer(raw.Id));
        Assert.Equal(0, check.Node.GetStatistics().BadFrames);
        lock (claimed)
        {
            Assert.Equal(["48:junk", "2:after-junk"], claimed);
        }

        await check.AssertStillServingAsync();
    }

    [Fact]
    public async Task A_broadcast_older_than_the_window_is_dropped()
    {
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var stale = Message.Create(MainFlag.Broadcast, raw.Id, Now - 120, (long)SubFlag.Broadcast, "stale");

        await raw.SendAsync(FrameCodec.Encode(stale));
        await raw.SendMessageAsync(MainFlag.Broadcast, (long)SubFlag.Broadcast, "fresh");

        await Eventually.UntilAsync(() => check.HonestInbox.Count(raw.Id, "fresh") == 1, "the fresh broadcast went through");
        Assert.Equal(1, check.NodeInbox.Count(raw.Id, "fresh"));
        Assert.Equal(0, check.NodeInbox.CountText("stale"));
        Assert.Equal(0, check.HonestInbox.CountText("stale"));
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public async Task A_broadcast_with_an_unknown_sub_flag_is_relayed_but_not_delivered()
    {
        // PROTOCOL.md §6: the reference ignores unknown sub-flags but still relays such a broadcast. We do so for an
        // authenticated peer (one of ours); from an unauthenticated one, see the next test.
        await using var check = await ServingCheck.StartAsync(new MeshOptions());
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.AuthenticatedHandshakeAsync(check.Node);
        var relayed = CountRelayedBy(check, raw, 0x30);

        await raw.SendMessageAsync(MainFlag.Broadcast, 0x30, "junk");
        await raw.SendMessageAsync(MainFlag.Broadcast, (long)SubFlag.Broadcast, "after-junk");

        await Eventually.UntilAsync(() => check.HonestInbox.Count(raw.Id, "after-junk") == 1, "the honest peer got the valid broadcast relayed");
        Assert.Equal(1, Volatile.Read(ref relayed.Value));
        Assert.Equal(0, check.HonestInbox.CountText("junk"));
        Assert.Equal(0, check.NodeInbox.CountText("junk"));
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public async Task A_broadcast_with_an_unknown_sub_flag_from_an_unauthenticated_peer_is_not_relayed()
    {
        // Relayed, it would reach our other nodes over an authenticated connection and pass for one of ours.
        await using var check = await ServingCheck.StartAsync(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var relayed = CountRelayedBy(check, raw, 0x31);

        await raw.SendMessageAsync(MainFlag.Broadcast, 0x31, "extension");
        await raw.SendMessageAsync(MainFlag.Broadcast, (long)SubFlag.Broadcast, "after-extension");

        await Eventually.UntilAsync(() => check.HonestInbox.Count(raw.Id, "after-extension") == 1, "py2p's own broadcast is relayed");
        Assert.Equal(0, Volatile.Read(ref relayed.Value));
        Assert.False(raw.IsClosed);
    }

    /// <summary>Counts the broadcasts with <paramref name="subFlag"/> from <paramref name="raw"/> that reach the honest peer (relayed by the node).</summary>
    private static StrongBox<int> CountRelayedBy(ServingCheck check, RawPeer raw, int subFlag)
    {
        var relayed = new StrongBox<int>();
        check.Honest.RegisterHandler(m =>
        {
            if (m.Message.SubFlagValue == subFlag && m.Sender == raw.Id)
            {
                Interlocked.Increment(ref relayed.Value);
            }

            return ValueTask.FromResult(false);
        });
        return relayed;
    }

    [Fact]
    public async Task A_connection_closed_while_the_node_is_blocked_sending_to_it_still_leaves_the_routing_table()
    {
        // Regression: when a connection closed while its write loop sat in a flush (the peer not reading), the
        // pipe writer's completion threw on the disposed stream, and the peer never finished closing: no
        // PeerDisconnected, a dead entry in the routing table, and a DisposeAsync that never returned. That last
        // is why this test disposes the node itself, with a deadline, instead of with await using.
        var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        var disposing = false;
        try
        {
            await node.StartAsync();
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp)
            {
                ReceiveBufferSize = 4096, // and it never reads: the node's flush of a big frame blocks
            };
            await client.ConnectAsync(IPAddress.Loopback, node.Address.Port);
            var id = NodeIdentity.NodeId("127.0.0.1", 1, RawPeer.ChordProtocolId, "not-reading");
            await client.SendAsync(FrameCodec.Encode(Message.Create(
                MainFlag.Whisper, id, Now, (long)SubFlag.Handshake, MsgValue.BinAscii(id), MsgValue.BinAscii(RawPeer.ChordProtocolId), MsgValue.Array("127.0.0.1", 1L), MsgValue.Array())));
            await Eventually.UntilAsync(() => node.GetPeer(id) is not null, "the node accepted the handshake");
            var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            node.PeerDisconnected += (_, e) =>
            {
                if (e.Peer.Id == id)
                {
                    gone.TrySetResult();
                }
            };

            var big = new byte[16 * 1024 * 1024]; // far more than the socket buffers of both ends hold
            Random.Shared.NextBytes(big);
            await node.WhisperAsync(id, "big", big);

            // Bytes of the big frame have arrived (the handshake and peers list are a few hundred): the node is in
            // the middle of flushing a frame it can never finish.
            await Eventually.UntilAsync(() => client.Available > 1024, "the node started sending the big frame");
            var badFrame = FrameCodec.Encode(Message.Create(MainFlag.Whisper, id, Now, (long)SubFlag.Whisper, "x"));
            badFrame[FrameCodec.HeaderLength] ^= 0xff;
            await client.SendAsync(badFrame);

            await Eventually.UntilAsync(() => gone.Task.IsCompleted, "the node raised PeerDisconnected for the connection it closed");
            Assert.Null(node.GetPeer(id));
            Assert.Empty(node.Peers);
            Assert.Equal(0, node.GetStatistics().Peers);

            disposing = true;
            try
            {
                await node.DisposeAsync().AsTask().WaitAsync(Eventually.Deadline);
            }
            catch (TimeoutException)
            {
                Assert.Fail("DisposeAsync did not return: a connection never finished closing");
            }
        }
        finally
        {
            if (!disposing)
            {
                // The test has failed already; on a broken node this may never finish, so it is not awaited.
                _ = node.DisposeAsync().AsTask();
            }
        }
    }

    private static byte[] BadFrame(string kind)
    {
        var valid = FrameCodec.Encode(Message.Create(MainFlag.Whisper, NodeIdentity.NodeId("127.0.0.1", 1, RawPeer.ChordProtocolId, "x"), Now, (long)SubFlag.Whisper, "hi"));
        switch (kind)
        {
            case "digest-mismatch":
                valid[FrameCodec.HeaderLength + 5] ^= 0x01;
                return valid;
            case "garbage-msgpack":
                return MeshFrames.WithValidDigest([0xc1, 0xc1, 0x93, 0x00, 0xff, 0x42, 0x13, 0x37]);
            case "sender-as-str":
                return MeshFrames.WithValidDigest(MsgValue.Array((long)MainFlag.Whisper, "sender-as-str", Now, (long)SubFlag.Whisper, "hi"));
            case "too-few-packets":
                return MeshFrames.WithValidDigest(MsgValue.Array((long)MainFlag.Whisper, RawId, Now));
            case "unknown-main-flag":
                return MeshFrames.WithValidDigest(MsgValue.Array(9L, RawId, Now, (long)SubFlag.Whisper, "hi"));
            case "time-as-str":
                return MeshFrames.WithValidDigest(MsgValue.Array((long)MainFlag.Whisper, RawId, "now", (long)SubFlag.Whisper, "hi"));
            case "not-an-array":
                return MeshFrames.WithValidDigest(MsgValue.Map(("type", (MsgValue)2L)));
            case "trailing-bytes":
                return MeshFrames.WithValidDigest([.. MsgPack.Serialize(MsgValue.Array((long)MainFlag.Whisper, RawId, Now, (long)SubFlag.Whisper)), 0x00]);
            case "truncated-msgpack":
                var packed = MsgPack.Serialize(MsgValue.Array((long)MainFlag.Whisper, RawId, Now, (long)SubFlag.Whisper, "hello"));
                return MeshFrames.WithValidDigest(packed.AsSpan(0, packed.Length - 3));
            case "invalid-utf8":
                // fixstr of 2 bytes that are not UTF-8.
                byte[] head = MsgPack.Serialize(MsgValue.Array((long)MainFlag.Whisper, RawId, Now, (long)SubFlag.Whisper, "ab"));
                head[^2] = 0xff;
                head[^1] = 0xfe;
                return MeshFrames.WithValidDigest(head);
            case "empty-body":
                return MeshFrames.Header(0);
            case "digest-only":
                return MeshFrames.Frame(SHA256.HashData(ReadOnlySpan<byte>.Empty));
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown bad-frame kind");
        }
    }
}
