using System.Buffers;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// Bare digests (docs/PROTOCOL-EXTENSIONS.md): two of our nodes that both announced them in their challenge send frames
/// whose digest is 32 zero bytes, and never hash a whisper; a peer that did not announce them (a py2p node, an older
/// node of ours) gets and must send real digests.
/// </summary>
public class BareDigestTests
{
    /// <summary>A whole frame (header included) of <paramref name="message"/> with a bare digest.</summary>
    private static ReadOnlyMemory<byte> BareFrame(Message message)
    {
        var frame = new ArrayBufferWriter<byte>();
        FrameCodec.Write(frame, message, null, rawUnlessSmaller: false, bareDigest: true);
        return frame.WrittenMemory;
    }

    [Fact]
    public void A_bare_frame_decodes_only_where_bare_digests_are_taken_and_its_id_is_still_the_digest_of_its_content()
    {
        var message = Message.Create(MainFlag.Whisper, "sender", 1_700_000_000, (long)SubFlag.Whisper, "bare");
        var body = new ReadOnlySequence<byte>(BareFrame(message)[FrameCodec.HeaderLength..]);

        Assert.False(body.Slice(0, FrameCodec.DigestLength).ToArray().AsSpan().ContainsAnyExcept((byte)0));
        var error = Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(body, []));
        Assert.Contains("digest", error.Message, StringComparison.Ordinal);

        var decoded = FrameCodec.DecodeBody(body, [], acceptBareDigest: true);
        Assert.Equal("bare", decoded.Payload[1].AsString());
        Assert.Equal(message.Id, decoded.Id);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(message.Packed.Span)), decoded.Id.ToString());
    }

    [Theory]
    [InlineData(CompressionMethod.Zlib)]
    [InlineData(CompressionMethod.Gzip)]
    [InlineData(CompressionMethod.Snappy)]
    [InlineData(CompressionMethod.Bz2)]
    public void A_compressed_bare_frame_decodes_where_bare_digests_are_taken(CompressionMethod method)
    {
        var text = string.Concat(Enumerable.Repeat("compressible ", 200));
        var message = Message.Create(MainFlag.Whisper, "sender", 1_700_000_000, (long)SubFlag.Whisper, text);
        var buffer = new ArrayBufferWriter<byte>();
        FrameCodec.Write(buffer, message, method, rawUnlessSmaller: false, bareDigest: true);
        var body = new ReadOnlySequence<byte>(buffer.WrittenMemory[FrameCodec.HeaderLength..]);

        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(body, [method]));
        Assert.Equal(text, FrameCodec.DecodeBody(body, [method], acceptBareDigest: true).Payload[1].AsString());
    }

    [Fact]
    public void A_frame_with_a_wrong_digest_is_refused_even_where_bare_digests_are_taken()
    {
        var message = Message.Create(MainFlag.Whisper, "sender", 1_700_000_000, (long)SubFlag.Whisper, "tampered");
        var frame = FrameCodec.Encode(message);
        frame[FrameCodec.HeaderLength + 3] ^= 0x01; // one bit of the digest: neither the content's SHA-256 nor bare

        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(frame.AsMemory(FrameCodec.HeaderLength)), [], acceptBareDigest: true));
    }

    [Fact]
    public async Task Two_of_our_nodes_send_each_other_bare_frames_and_talk()
    {
        await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        var inbox = new Inbox(a);

        var link = await b.ConnectAsync(a.Address);
        await Eventually.UntilAsync(() => a.GetPeer(b.Id) is not null, "a serves b");
        await b.WhisperAsync(a.Id, "over bare frames");

        await Eventually.UntilAsync(() => inbox.Count(b.Id, "over bare frames") == 1, "a received b's whisper");
        Assert.True(link.BareDigests, "b knows a takes bare digests");
        Assert.True(a.GetPeer(b.Id)!.BareDigests, "a knows b takes bare digests");
        Assert.Equal(0, a.GetStatistics().BadFrames);
        Assert.Equal(0, b.GetStatistics().BadFrames);
    }

    [Fact]
    public async Task A_peer_that_announced_bare_digests_gets_bare_frames_and_its_own_are_taken()
    {
        await using var node = new MeshNode(new MeshOptions());
        await node.StartAsync();
        var inbox = new Inbox(node);
        await using var raw = await RawPeer.ConnectAsync(node.Address);

        await raw.AuthenticatedHandshakeAsync(node, features: MeshAuthentication.BareDigestsFeature);
        await raw.SendAsync(BareFrame(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "bare from raw")));

        await Eventually.UntilAsync(() => inbox.Count(raw.Id, "bare from raw") == 1, "the node took the raw peer's bare frame");
        // The node's challenge and handshake were queued before it read ours; what it sent after (its peers list) is bare.
        var peers = raw.Frames.Single(f => f.Message.Is(SubFlag.Peers));
        Assert.True(peers.Bare, "the node's peers list went with a bare digest");
        Assert.False(raw.Frames[0].Bare, "the node's challenge, its first frame, has its digest");
        Assert.Equal(0, raw.Undecodable);
        Assert.Equal(0, node.GetStatistics().BadFrames);
    }

    [Fact]
    public async Task A_peer_that_did_not_announce_bare_digests_gets_every_digest_and_a_bare_frame_from_it_closes_its_connection()
    {
        await using var node = new MeshNode(new MeshOptions());
        await node.StartAsync();
        var inbox = new Inbox(node);
        await using var raw = await RawPeer.ConnectAsync(node.Address);

        await raw.AuthenticatedHandshakeAsync(node); // a challenge without features: an older node of ours
        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "with its digest");
        await Eventually.UntilAsync(() => inbox.Count(raw.Id, "with its digest") == 1, "the node took the raw peer's whisper");
        await raw.TrySendAsync(BareFrame(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "bare from raw")));

        await raw.WaitClosedAsync("the node closed the connection that sent a frame whose digest does not match");
        Assert.Equal(0, inbox.CountText("bare from raw"));
        Assert.Equal(1, node.GetStatistics().BadFrames);
        Assert.NotEmpty(raw.Frames);
        Assert.DoesNotContain(raw.Frames, f => f.Bare);
        Assert.Equal(0, raw.Undecodable);
    }

    [Fact]
    public async Task With_security_off_a_peer_that_announces_bare_digests_still_gets_every_digest()
    {
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.Off });
        await node.StartAsync();
        var inbox = new Inbox(node);
        await using var raw = await RawPeer.ConnectAsync(node.Address);

        // A challenge announcing bare digests, which a node without security reads as any unknown sub-flag.
        await raw.SendMessageAsync(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(new byte[MeshAuthentication.Length]), MsgValue.From(MeshAuthentication.BareDigestsFeature));
        await raw.HandshakeAsync(node);
        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "with its digest");
        await Eventually.UntilAsync(() => inbox.Count(raw.Id, "with its digest") == 1, "the node took the raw peer's whisper");
        await raw.TrySendAsync(BareFrame(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "bare from raw")));

        await raw.WaitClosedAsync("the node closed the connection that sent a bare frame without security");
        Assert.Equal(0, inbox.CountText("bare from raw"));
        Assert.DoesNotContain(raw.Frames, f => f.Bare);
        Assert.Equal(0, raw.Undecodable);
    }

    [Fact]
    public async Task A_broadcast_that_arrived_bare_is_relayed_with_its_real_digest_to_a_peer_that_checks_digests()
    {
        await using var node = new MeshNode(new MeshOptions());
        await node.StartAsync();
        await using var announcing = await RawPeer.ConnectAsync(node.Address);
        await using var checking = await RawPeer.ConnectAsync(node.Address);
        await announcing.AuthenticatedHandshakeAsync(node, features: MeshAuthentication.BareDigestsFeature);
        await checking.AuthenticatedHandshakeAsync(node);

        var broadcast = announcing.Create(MainFlag.Broadcast, (long)SubFlag.Broadcast, "relayed");
        await announcing.SendAsync(BareFrame(broadcast));

        var relayed = await checking.WaitForAsync(m => m.Type == MainFlag.Broadcast && Inbox.TextOf(m) == "relayed", "the node relayed the broadcast to the other peer");
        Assert.False(relayed.Bare, "a peer that did not announce bare digests gets the broadcast's SHA-256");
        Assert.Equal(broadcast.Id, relayed.Message.Id);
        Assert.Equal(0, checking.Undecodable);
    }
}
