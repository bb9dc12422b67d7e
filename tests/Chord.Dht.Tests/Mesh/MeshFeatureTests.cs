using System.Collections.Concurrent;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Mesh;

/// <summary>The mesh's features between a few nodes on loopback (issue item 5).</summary>
public class MeshFeatureTests
{
    private static readonly string Compressible = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog; ", 5000));

    [Fact]
    public async Task Nodes_with_different_compression_preferences_agree_and_exchange_compressed_frames()
    {
        await using var a = new MeshNode(new MeshOptions { Compression = [CompressionMethod.Zlib, CompressionMethod.Snappy], CompressionThreshold = 0, MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { Compression = [CompressionMethod.Snappy, CompressionMethod.Bz2, CompressionMethod.Zlib], CompressionThreshold = 0, MaxOutgoing = 0 });
        var inboxA = new Inbox(a);
        var inboxB = new Inbox(b);
        await a.StartAsync();
        await b.StartAsync();
        var ab = await a.ConnectAsync(b.Address);
        await Eventually.UntilAsync(() => b.GetPeer(a.Id) is not null, "b has a in its routing table");
        var ba = b.GetPeer(a.Id)!;

        // Each uses the first of its own list that the other accepts.
        Assert.Equal([CompressionMethod.Zlib, CompressionMethod.Snappy], ab.AgreedCompression);
        Assert.Equal(CompressionMethod.Zlib, ab.SendCompression);
        Assert.Equal([CompressionMethod.Snappy, CompressionMethod.Zlib], ba.AgreedCompression);
        Assert.Equal(CompressionMethod.Snappy, ba.SendCompression);

        var outA = a.GetStatistics().BytesOut;
        var outB = b.GetStatistics().BytesOut;
        await a.WhisperAsync(b.Id, "big-whisper", Compressible);
        await a.BroadcastAsync("big-broadcast", Compressible);
        await a.BroadcastAsync("small", 1L);
        await b.WhisperAsync(a.Id, "big-whisper", Compressible);
        await b.BroadcastAsync("big-broadcast", Compressible);
        await b.BroadcastAsync("small", 2L);

        foreach (var (inbox, from) in new[] { (inboxB, a), (inboxA, b) })
        {
            await Eventually.UntilAsync(
                () => inbox.Count(from.Id, "big-whisper") == 1 && inbox.Count(from.Id, "big-broadcast") == 1 && inbox.Count(from.Id, "small") == 1,
                $"{(from == a ? "b" : "a")} got the compressed messages");
            Assert.All(
                inbox.All.Where(m => Inbox.TextOf(m.Message).StartsWith("big-", StringComparison.Ordinal)),
                m => Assert.Equal(MsgValue.Str(Compressible), m.Payload[2]));
            Assert.Equal(MsgValue.From(from == a ? 1L : 2L), inbox.All.Single(m => Inbox.TextOf(m.Message) == "small").Payload[2]);
        }

        // Two copies of ~225 kB went out each way: compressed, they are a small fraction of that. A sender counts its
        // bytes once its write completed, which can be just after the receiver read them.
        await Eventually.UntilAsync(() => a.GetStatistics().BytesOut > outA && b.GetStatistics().BytesOut > outB, "both senders to count what they wrote");
        Assert.InRange(a.GetStatistics().BytesOut - outA, 1, Compressible.Length / 4);
        Assert.InRange(b.GetStatistics().BytesOut - outB, 1, Compressible.Length / 4);
        Assert.Equal(0, a.GetStatistics().BadFrames + b.GetStatistics().BadFrames);
    }

    [Fact]
    public async Task A_node_finds_and_connects_to_a_node_it_knows_only_by_id()
    {
        await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var c = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        await c.StartAsync();
        await a.ConnectAsync(b.Address);
        await b.ConnectAsync(c.Address);
        await Eventually.UntilAsync(() => b.GetPeer(a.Id) is not null && c.GetPeer(b.Id) is not null, "the line a–b–c formed");
        Assert.Null(a.GetPeer(c.Id));
        Assert.Null(c.GetPeer(a.Id));

        var address = await a.FindAddressAsync(c.Id);
        Assert.Equal(c.Address, address);
        Assert.Null(a.GetPeer(c.Id)); // finding does not connect

        var peer = await a.ConnectToIdAsync(c.Id);
        Assert.Equal(c.Id, peer.Id);
        Assert.Same(peer, a.GetPeer(c.Id));
        var inboxC = new Inbox(c);
        await a.WhisperAsync(c.Id, "direct");
        await Eventually.UntilAsync(() => inboxC.Count(a.Id, "direct") == 1, "c got a's whisper on the new direct connection");
        Assert.Same(peer, await a.ConnectToIdAsync(c.Id)); // already connected: the same connection
    }

    [Fact]
    public async Task Finding_an_id_that_nobody_knows_times_out()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var a = new MeshNode(new MeshOptions { TimeProvider = time, RequestTimeout = TimeSpan.FromSeconds(10), MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        await b.ConnectAsync(a.Address);
        var nobody = NodeIdentity.NodeId("127.0.0.1", 9, a.ProtocolId, "nobody");

        var find = a.FindAddressAsync(nobody);
        await Eventually.UntilAsync(
            () =>
            {
                time.Advance(TimeSpan.FromSeconds(1));
                return find.IsCompleted;
            },
            "the lookup gave up once its fake deadline passed");
        var error = await Assert.ThrowsAsync<TimeoutException>(() => find);
        Assert.Contains(nobody, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_first_handler_that_claims_a_message_ends_the_chain()
    {
        await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        await b.ConnectAsync(a.Address);
        var calls = new ConcurrentQueue<string>();
        a.RegisterHandler(m =>
        {
            var text = Inbox.TextOf(m.Message);
            calls.Enqueue("first:" + text);
            return ValueTask.FromResult(text.StartsWith("claim", StringComparison.Ordinal));
        });
        a.RegisterHandler(m =>
        {
            calls.Enqueue("second:" + Inbox.TextOf(m.Message));
            return ValueTask.FromResult(false);
        });
        var events = new ConcurrentQueue<string>();
        a.MessageReceived += (_, e) => events.Enqueue(Inbox.TextOf(e.Message.Message));

        await b.BroadcastAsync("claim-broadcast");
        await b.WhisperAsync(a.Id, "claim-whisper");
        await b.BroadcastAsync("pass-broadcast");
        await b.WhisperAsync(a.Id, "pass-whisper");

        // One connection, handled in order: when the last arrives the others have been handled.
        using var cts = new CancellationTokenSource(Eventually.Deadline);
        Assert.Equal("pass-broadcast", Inbox.TextOf((await a.ReceiveAsync(cts.Token)).Message));
        Assert.Equal("pass-whisper", Inbox.TextOf((await a.ReceiveAsync(cts.Token)).Message));
        Assert.False(a.TryReceive(out _));
        Assert.Equal(["pass-broadcast", "pass-whisper"], events);
        Assert.Equal(
            ["first:claim-broadcast", "first:claim-whisper", "first:pass-broadcast", "second:pass-broadcast", "first:pass-whisper", "second:pass-whisper"],
            calls);
    }

    [Fact]
    public async Task ConnectedToNetwork_is_raised_once_and_MessageReceived_carries_the_message()
    {
        await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var c = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        await c.StartAsync();
        var log = new ConcurrentQueue<string>();
        object? networkSender = null;
        a.ConnectedToNetwork += (sender, _) =>
        {
            networkSender = sender;
            log.Enqueue("network");
        };
        a.PeerConnected += (_, e) => log.Enqueue("peer:" + e.Peer.Id);
        var received = new ConcurrentQueue<(object? Sender, MeshMessageEventArgs Args)>();
        a.MessageReceived += (sender, e) => received.Enqueue((sender, e));

        // The events of one connection are raised on its own read loop, after its handshake: wait for the first
        // connection's before making the second, or the second's PeerConnected may come between them (it did once).
        await a.ConnectAsync(b.Address);
        await Eventually.UntilAsync(() => log.Contains("network"), "a raised ConnectedToNetwork for its first peer");
        await a.ConnectAsync(c.Address);
        await Eventually.UntilAsync(() => b.GetPeer(a.Id) is not null && c.GetPeer(a.Id) is not null, "b and c have a in their routing tables");

        // A message on each connection: once a has it, a has finished with that connection's handshake.
        await b.WhisperAsync(a.Id, "from-b", 1L);
        await c.BroadcastAsync("from-c", 2L);
        await Eventually.UntilAsync(() => received.Count == 2, "a received both messages");

        Assert.Equal(["peer:" + b.Id, "network", "peer:" + c.Id], log);
        Assert.Same(a, networkSender);
        var byText = received.ToDictionary(r => Inbox.TextOf(r.Args.Message.Message));
        var fromB = byText["from-b"];
        Assert.Same(a, fromB.Sender);
        Assert.Same(a, fromB.Args.Message.Node);
        Assert.Equal(b.Id, fromB.Args.Message.Sender);
        Assert.Equal(b.Id, fromB.Args.Message.Peer.Id);
        Assert.Equal(MainFlag.Whisper, fromB.Args.Message.Message.Type);
        Assert.Equal<MsgValue>([MsgValue.From((long)SubFlag.Whisper), MsgValue.Str("from-b"), MsgValue.From(1L)], fromB.Args.Message.Payload);
        var fromC = byText["from-c"];
        Assert.Equal(c.Id, fromC.Args.Message.Sender);
        Assert.Equal(MainFlag.Broadcast, fromC.Args.Message.Message.Type);
        Assert.Equal<MsgValue>([MsgValue.From((long)SubFlag.Broadcast), MsgValue.Str("from-c"), MsgValue.From(2L)], fromC.Args.Message.Payload);

        // The queue holds the same messages as the event. Not necessarily in the same order: the two arrived on two
        // connections, whose read loops each queue and then raise, and may interleave between the two.
        Assert.True(a.TryReceive(out var first));
        Assert.True(a.TryReceive(out var second));
        Assert.Equal(received.Select(r => r.Args.Message).ToHashSet(), new HashSet<MeshMessage> { first!, second! });
    }

    [Fact]
    public async Task Two_nodes_dialling_each_other_at_once_keep_exactly_one_connection()
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await using var a = new MeshNode(new MeshOptions());
            await using var b = new MeshNode(new MeshOptions());
            var inboxA = new Inbox(a);
            var inboxB = new Inbox(b);
            var seenByA = new ConcurrentQueue<MeshPeer>();
            var seenByB = new ConcurrentQueue<MeshPeer>();
            a.PeerConnected += (_, e) => seenByA.Enqueue(e.Peer);
            b.PeerConnected += (_, e) => seenByB.Enqueue(e.Peer);
            await a.StartAsync();
            await b.StartAsync();

            var dialled = await Task.WhenAll(a.ConnectAsync(b.Address), b.ConnectAsync(a.Address));
            Assert.Equal(b.Id, dialled[0].Id);
            Assert.Equal(a.Id, dialled[1].Id);

            // Both ends keep the same connection: the one the node with the smaller id dialled.
            var aIsSmaller = RingPosition.FromBase58(a.Id).CompareTo(RingPosition.FromBase58(b.Id)) < 0;
            await Eventually.UntilAsync(
                () => a.GetPeer(b.Id) is { } pa && b.GetPeer(a.Id) is { } pb && pa.IsOutgoing == aIsSmaller && pb.IsOutgoing == !aIsSmaller
                    && a.GetStatistics() is { Peers: 1, Awaiting: 0 } && b.GetStatistics() is { Peers: 1, Awaiting: 0 }
                    && seenByA.Concat(dialled.Take(1)).All(p => p == a.GetPeer(b.Id) || p.Closed.IsCompleted)
                    && seenByB.Concat(dialled.Skip(1)).All(p => p == b.GetPeer(a.Id) || p.Closed.IsCompleted),
                $"attempt {attempt}: each node holds exactly one open connection to the other, the same one");
            var survivorA = a.GetPeer(b.Id)!;
            var survivorB = b.GetPeer(a.Id)!;

            await a.BroadcastAsync("a-broadcast");
            await a.WhisperAsync(b.Id, "a-whisper");
            await b.BroadcastAsync("b-broadcast");
            await b.WhisperAsync(a.Id, "b-whisper");
            await a.WhisperAsync(b.Id, "a-marker");
            await b.WhisperAsync(a.Id, "b-marker");
            await Eventually.UntilAsync(() => inboxB.Count(a.Id, "a-marker") == 1 && inboxA.Count(b.Id, "b-marker") == 1, "messages flow both ways");
            Assert.Equal(1, inboxB.Count(a.Id, "a-broadcast"));
            Assert.Equal(1, inboxB.Count(a.Id, "a-whisper"));
            Assert.Equal(1, inboxA.Count(b.Id, "b-broadcast"));
            Assert.Equal(1, inboxA.Count(b.Id, "b-whisper"));
            Assert.Same(survivorA, a.GetPeer(b.Id));
            Assert.Same(survivorB, b.GetPeer(a.Id));
        }
    }

    [Fact]
    public async Task Renegotiate_applies_the_agreed_compression_and_resend_repeats_the_last_whisper()
    {
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated, CompressionThreshold = 0, MaxOutgoing = 0 });
        await node.StartAsync();
        await using var raw = await RawPeer.ConnectAsync(node.Address);
        await raw.HandshakeAsync(node); // advertises no compression
        var peer = node.GetPeer(raw.Id)!;
        Assert.Empty(peer.AgreedCompression);
        Assert.Null(peer.SendCompression);

        // An offer the node fully accepts is adopted without an answer.
        await raw.SendMessageAsync(MainFlag.Renegotiate, (long)SubFlag.Compression, MsgValue.Array((long)CompressionMethod.Zlib));
        await Eventually.UntilAsync(() => peer.SendCompression == CompressionMethod.Zlib, "the node adopted zlib for this connection");
        Assert.Equal([CompressionMethod.Zlib], peer.AgreedCompression);
        await node.WhisperAsync(raw.Id, "now-zlib", Compressible);
        var zlibbed = await raw.WaitForAsync(m => Inbox.TextOf(m) == "now-zlib", "the raw client got the whisper");
        Assert.Equal(CompressionMethod.Zlib, zlibbed.Compression);
        Assert.Equal(MsgValue.Str(Compressible), zlibbed.Message.Payload[2]);

        // An offer with methods the node lacks: it keeps the intersection and answers with it.
        await raw.SendMessageAsync(MainFlag.Renegotiate, (long)SubFlag.Compression, MsgValue.Array((long)CompressionMethod.Snappy, 0x12L, 0x77L));
        var answer = await raw.WaitForAsync(m => m.Type == MainFlag.Renegotiate, "the node answered the partial offer");
        Assert.Equal<MsgValue>([MsgValue.From((long)SubFlag.Compression), MsgValue.Array((long)CompressionMethod.Snappy)], answer.Message.Payload);
        Assert.Equal([CompressionMethod.Snappy], peer.AgreedCompression);
        Assert.Equal(CompressionMethod.Snappy, peer.SendCompression);

        // resend: the last whisper again, the very same message.
        await node.WhisperAsync(raw.Id, "last-one", 7L);
        var last = await raw.WaitForAsync(m => Inbox.TextOf(m) == "last-one", "the raw client got the last whisper");
        await raw.SendMessageAsync(MainFlag.Renegotiate, (long)SubFlag.Resend);
        await Eventually.UntilAsync(() => raw.Frames.Count(f => Inbox.TextOf(f.Message) == "last-one") == 2, "the node re-sent its last whisper");
        Assert.All(raw.Frames.Where(f => Inbox.TextOf(f.Message) == "last-one"), f => Assert.Equal(last.Message.Id, f.Message.Id));
        Assert.Equal(0, raw.Undecodable);
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public async Task A_py2p_peer_that_renegotiates_to_no_compression_but_keeps_compressing_loses_no_frame()
    {
        // py2p 0.7 (mesh.py compares the str '*' with b'*') announces "renegotiate compression []" and then goes on
        // compressing with the method agreed at the handshake. The node decodes every method ever agreed on the
        // connection, so nothing is lost and the connection stays.
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await node.StartAsync();
        var inbox = new Inbox(node);
        await using var raw = await RawPeer.ConnectAsync(node.Address);
        await raw.HandshakeAsync(node, [CompressionMethod.Snappy]);
        var peer = node.GetPeer(raw.Id)!;
        Assert.Equal(CompressionMethod.Snappy, peer.SendCompression);

        await raw.SendMessageAsync(MainFlag.Renegotiate, (long)SubFlag.Compression, MsgValue.Array());
        await Eventually.UntilAsync(() => peer.SendCompression is null, "the node to stop compressing toward the peer");
        for (var i = 0; i < 3; i++)
        {
            await raw.SendAsync(FrameCodec.Encode(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "still-snappy", Compressible + i), CompressionMethod.Snappy));
        }

        await Eventually.UntilAsync(() => inbox.Count(raw.Id, "still-snappy") == 3, "the node to take the three snappy frames");
        Assert.False(raw.IsClosed);
        Assert.Equal(0, node.GetStatistics().BadFrames);

        // What the node sends now is uncompressed, which py2p reads whatever it announced.
        await node.WhisperAsync(raw.Id, "plain-now", Compressible);
        var plain = await raw.WaitForAsync(m => Inbox.TextOf(m) == "plain-now", "the raw peer got the whisper");
        Assert.Null(plain.Compression);
    }

    [Fact]
    public async Task After_losing_a_peer_the_node_asks_a_py2p_peer_for_peers_in_the_bytes_form_its_handler_answers()
    {
        // py2p 0.7 compares the request's '*' with b'*': the str form (the reference's own) fails in its handler with
        // an IndexError, which py2p takes for an undecodable frame (renegotiation to no compression, a resend).
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await node.StartAsync();
        await using var py2p = await RawPeer.ConnectAsync(node.Address);
        await py2p.HandshakeAsync(node);
        var leaving = await RawPeer.ConnectAsync(node.Address);
        await leaving.HandshakeAsync(node);
        await Eventually.UntilAsync(() => node.GetPeer(leaving.Id) is not null, "the second peer to be connected");

        await leaving.DisposeAsync();

        var request = await py2p.WaitForAsync(m => m.SubFlagValue == (int)SubFlag.Request, "the node to ask the py2p peer for its peers");
        Assert.Equal(2, request.Message.Payload.Length);
        Assert.Equal(MsgKind.Bin, request.Message.Payload[1].Kind);
        Assert.Equal("*", request.Message.Payload[1].AsAscii());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_request_for_all_peers_is_answered_whether_its_star_is_a_str_or_bytes(bool asBytes)
    {
        await using var node = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated });
        await node.StartAsync();
        await using var raw = await RawPeer.ConnectAsync(node.Address);
        await raw.HandshakeAsync(node);

        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Request, asBytes ? MsgValue.BinAscii("*") : "*");

        var peers = await raw.WaitForAsync(m => m.SubFlagValue == (int)SubFlag.Peers, "the node to answer with its peers");
        Assert.Equal(MsgKind.Array, peers.Message.Payload[1].Kind);
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public void Options_validation_names_MaxOutgoing()
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new MeshNode(new MeshOptions { MaxOutgoing = -1 }));
        Assert.Contains("MaxOutgoing", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(nameof(MeshOptions.ListenPort))]
    [InlineData(nameof(MeshOptions.MaxFrameLength))]
    [InlineData(nameof(MeshOptions.CompressionThreshold))]
    [InlineData(nameof(MeshOptions.OutboundQueueCapacity))]
    [InlineData(nameof(MeshOptions.ReceiveQueueCapacity))]
    [InlineData(nameof(MeshOptions.StuckFrameTimeout))]
    [InlineData(nameof(MeshOptions.BroadcastWindow))]
    [InlineData(nameof(MeshOptions.HandshakeTimeout))]
    [InlineData(nameof(MeshOptions.RequestTimeout))]
    [InlineData(nameof(MeshOptions.MaintenanceInterval))]
    [InlineData(nameof(MeshOptions.ListenHost))]
    [InlineData(nameof(MeshOptions.Compression))]
    public void Options_validation_names_the_bad_setting(string setting)
    {
        var options = new MeshOptions();
        switch (setting)
        {
            case nameof(MeshOptions.ListenPort): options.ListenPort = 70000; break;
            case nameof(MeshOptions.MaxFrameLength): options.MaxFrameLength = 10; break;
            case nameof(MeshOptions.CompressionThreshold): options.CompressionThreshold = -1; break;
            case nameof(MeshOptions.OutboundQueueCapacity): options.OutboundQueueCapacity = 0; break;
            case nameof(MeshOptions.ReceiveQueueCapacity): options.ReceiveQueueCapacity = 0; break;
            case nameof(MeshOptions.StuckFrameTimeout): options.StuckFrameTimeout = TimeSpan.Zero; break;
            case nameof(MeshOptions.BroadcastWindow): options.BroadcastWindow = TimeSpan.FromSeconds(-1); break;
            case nameof(MeshOptions.HandshakeTimeout): options.HandshakeTimeout = TimeSpan.Zero; break;
            case nameof(MeshOptions.RequestTimeout): options.RequestTimeout = TimeSpan.Zero; break;
            case nameof(MeshOptions.MaintenanceInterval): options.MaintenanceInterval = TimeSpan.Zero; break;
            case nameof(MeshOptions.ListenHost): options.ListenHost = " "; break;
            case nameof(MeshOptions.Compression): options.Compression = [(CompressionMethod)0x12]; break;
            default: throw new ArgumentOutOfRangeException(nameof(setting), setting, "no bad value for this setting");
        }

        var error = Assert.ThrowsAny<ArgumentException>(() => new MeshNode(options));
        Assert.Contains(setting, error.Message, StringComparison.Ordinal);
    }
}
