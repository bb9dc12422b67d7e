using System.Net;
using System.Net.Sockets;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// Bounded resources for strangers (issue 13): connection limits, a small frame limit and byte budget before a peer
/// is authenticated, and dials of a dead member backed off with one line per attempt.
/// </summary>
public class MeshLimitsTests
{
    [Fact]
    public async Task Many_connections_claiming_huge_frames_before_authenticating_are_closed_early_and_the_node_keeps_serving()
    {
        const int attackers = 32;
        await using var check = await ServingCheck.StartAsync(new MeshOptions());
        var before = check.Node.GetStatistics();
        var raws = new List<RawPeer>();
        try
        {
            for (var i = 0; i < attackers; i++)
            {
                raws.Add(await RawPeer.ConnectAsync(check.Node.Address));
            }

            // Each claims a 16 MiB frame (the normal maximum) and starts sending its body.
            var body = new byte[64 * 1024];
            await Task.WhenAll(raws.Select(async r =>
            {
                await r.TrySendAsync(MeshFrames.Header(FrameCodec.DefaultMaxFrameLength));
                await r.TrySendAsync(body);
            }));

            foreach (var raw in raws)
            {
                await raw.WaitClosedAsync("the node closed an unauthenticated connection that claimed a 16 MiB frame");
            }

            await Eventually.UntilAsync(() => check.Node.GetStatistics().OpenConnections == 1, "only the honest peer's connection is left");
            var after = check.Node.GetStatistics();
            Assert.Equal(before.PreAuthLimitCloses + attackers, after.PreAuthLimitCloses);
            // Closed on the length header: what the node held is what one read brought, header and some body, and the
            // connection takes no more than the budget from the socket.
            Assert.InRange(after.PreAuthPeakBytes, FrameCodec.HeaderLength, check.Node.Options.MaxPreAuthBytes);
            Assert.Equal(before.Exceptions, after.Exceptions);
            await check.AssertStillServingAsync();
        }
        finally
        {
            foreach (var raw in raws)
            {
                await raw.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Frames_each_under_the_pre_authentication_frame_limit_are_cut_off_by_the_byte_budget_and_the_peak_shows_what_was_held()
    {
        var logs = new LogCapture();
        var options = new MeshOptions();
        await using var node = new MeshNode(options, logs);
        await node.StartAsync();
        var inbox = new Inbox(node);

        // Each frame alone is allowed before authentication; 64 of them in one burst are sixteen times the budget.
        await using var attacker = await RawPeer.ConnectAsync(node.Address);
        var frame = FrameCodec.Encode(attacker.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "flood", new string('x', options.MaxPreAuthFrameLength - 256)));
        Assert.InRange(frame.Length - FrameCodec.HeaderLength, options.MaxPreAuthFrameLength - 256, options.MaxPreAuthFrameLength);
        var burst = new byte[frame.Length * 64];
        for (var i = 0; i < 64; i++)
        {
            frame.CopyTo(burst, i * frame.Length);
        }

        await attacker.TrySendAsync(burst); // false once the node has closed the connection under it: expected
        await attacker.WaitClosedAsync("the node closed a connection that sent over its pre-authentication budget");

        var stats = node.GetStatistics();
        Assert.Equal(1, stats.PreAuthLimitCloses);
        Assert.Equal(0, stats.BadFrames); // not closed as one frame too long: by the byte count
        Assert.Equal(0, inbox.CountText("flood"));
        Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.Contains("before it authenticated, over the limit of " + options.MaxPreAuthBytes, StringComparison.Ordinal));

        // The connection took no more than the budget from the socket (one read of its pipe takes up to 64 KiB, four
        // times the budget, so without the cap the peak would be over it): the node held at most the budget.
        Assert.InRange(stats.PreAuthPeakBytes, options.MaxPreAuthBytes - options.MaxPreAuthFrameLength, options.MaxPreAuthBytes);
        Assert.True(TcpConnection.ReadBufferSize > options.MaxPreAuthBytes, "a read of the pipe can take more than the budget");
    }

    [Fact]
    public async Task Bytes_sent_before_authenticating_are_capped_and_the_cap_lifts_once_authenticated()
    {
        await using var node = new MeshNode(new MeshOptions { MaxPreAuthBytes = 2048 });
        await node.StartAsync();
        var inbox = new Inbox(node);

        // Small well-formed frames, none of them a handshake: ignored, but counted against the budget.
        await using var chatty = await RawPeer.ConnectAsync(node.Address);
        var frame = FrameCodec.Encode(chatty.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "before-auth"));
        for (var i = 0; i * frame.Length <= 4096 && await chatty.TrySendAsync(frame); i++)
        {
        }

        await chatty.WaitClosedAsync("the node closed a connection that sent over 2048 bytes before authenticating");
        Assert.Equal(1, node.GetStatistics().PreAuthLimitCloses);
        Assert.Equal(0, inbox.CountText("before-auth"));

        // An authenticated peer spends a few hundred bytes of the budget, then may send frames far larger.
        await using var ours = await RawPeer.ConnectAsync(node.Address);
        await ours.AuthenticatedHandshakeAsync(node);
        var large = new string('x', 64 * 1024);
        await ours.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "after-auth", large);
        await Eventually.UntilAsync(() => inbox.Count(ours.Id, "after-auth") == 1, "a 64 KiB whisper after authentication is delivered");
        var stats = node.GetStatistics();
        Assert.InRange(stats.PreAuthPeakBytes, 2048 - frame.Length, 2048); // the chatty one's: never over the cap
        Assert.Equal(1, stats.PreAuthLimitCloses);
    }

    [Fact]
    public async Task The_pre_authentication_limits_never_exceed_MaxFrameLength()
    {
        var options = new MeshOptions { MaxFrameLength = 1024, MaxPreAuthFrameLength = 4096, MaxPreAuthBytes = 16 * 1024 };
        Assert.Equal(1024, options.EffectivePreAuthFrameLength);
        Assert.Equal(1024, options.EffectivePreAuthBytes);
        await using var node = new MeshNode(options);
        await node.StartAsync();

        // 2000 bytes is within MaxPreAuthFrameLength but over MaxFrameLength: refused before authentication too.
        await using var raw = await RawPeer.ConnectAsync(node.Address);
        await raw.SendAsync(MeshFrames.Header(2000));
        await raw.WaitClosedAsync("a pre-authentication frame over MaxFrameLength closes the connection");
        Assert.Equal(1, node.GetStatistics().PreAuthLimitCloses);

        // Our own nodes still authenticate within the clamped budget.
        await using var peer = new MeshNode(new MeshOptions { MaxFrameLength = 1024 });
        await peer.StartAsync();
        Assert.True((await peer.ConnectAsync(node.Address)).IsAuthenticated);
    }

    [Fact]
    public async Task Connections_over_the_per_address_limit_are_closed_at_once_with_one_warning()
    {
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions { MaxConnectionsPerAddress = 2 }, logs);
        await node.StartAsync();
        await using var first = await RawPeer.ConnectAsync(node.Address);
        await using var second = await RawPeer.ConnectAsync(node.Address);
        await Eventually.UntilAsync(() => node.GetStatistics().OpenConnections == 2, "two connections are open");

        await using var third = await RawPeer.ConnectAsync(node.Address);
        await using var fourth = await RawPeer.ConnectAsync(node.Address);
        await third.WaitClosedAsync("a third connection from 127.0.0.1 is closed at once");
        await fourth.WaitClosedAsync("a fourth connection from 127.0.0.1 is closed at once");

        Assert.False(first.IsClosed);
        Assert.Equal(2, node.GetStatistics().RefusedConnections);
        Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Refused connections from 127.0.0.1:", StringComparison.Ordinal));

        // A slot freed is a slot for the next one.
        await first.DisposeAsync();
        await Eventually.UntilAsync(() => node.GetStatistics().OpenConnections == 1, "the first connection is gone");
        await using var fifth = await RawPeer.ConnectAsync(node.Address);
        await fifth.AuthenticatedHandshakeAsync(node);
    }

    [Fact]
    public async Task Connections_over_MaxConnections_are_closed_at_once()
    {
        await using var node = new MeshNode(new MeshOptions { MaxConnections = 2 });
        await node.StartAsync();
        await using var first = await RawPeer.ConnectAsync(node.Address);
        await using var second = await RawPeer.ConnectAsync(node.Address);
        await Eventually.UntilAsync(() => node.GetStatistics().OpenConnections == 2, "two connections are open");

        await using var third = await RawPeer.ConnectAsync(node.Address);

        await third.WaitClosedAsync("a third connection is closed at once");
        Assert.False(second.IsClosed);
        Assert.Equal(1, node.GetStatistics().RefusedConnections);
    }

    [Fact]
    public void Limits_out_of_range_are_refused_with_their_name()
    {
        Assert.Contains("MaxConnections", Assert.ThrowsAny<ArgumentException>(() => new MeshOptions { MaxConnections = 0 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxConnectionsPerAddress", Assert.ThrowsAny<ArgumentException>(() => new MeshOptions { MaxConnectionsPerAddress = 0 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxPreAuthFrameLength", Assert.ThrowsAny<ArgumentException>(() => new MeshOptions { MaxPreAuthFrameLength = 100 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxPreAuthBytes", Assert.ThrowsAny<ArgumentException>(() => new MeshOptions { MaxPreAuthBytes = 100 }.Validate()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_member_that_accepts_but_never_completes_a_handshake_is_dialled_again_each_time_and_warned_of_once()
    {
        // A frozen process: its kernel still accepts connections, nothing answers. It is alive as far as anyone can
        // tell, so it is not backed off; but three failed dials are one warning, not three.
        using var frozen = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        frozen.Start();
        var port = ((System.Net.IPEndPoint)frozen.LocalEndpoint).Port;
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(200) }, logs);
        await node.StartAsync();

        const string memberId = "FrozenMemberId";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var failure = await Assert.ThrowsAsync<MeshConnectException>(() => node.ConnectAsync("127.0.0.1", port, memberId));
            Assert.False(failure.IsBackoff); // dialled for real each time
            Assert.Contains("did not complete a handshake", failure.Message, StringComparison.Ordinal);
        }

        var lines = logs.Entries.Where(l => l.Text.StartsWith("Could not reach", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(LogLevel.Warning, lines[0].Level);
        Assert.All(lines.Skip(1), l => Assert.Equal(LogLevel.Debug, l.Level));
        Assert.All(logs.Entries.Where(l => l.Exception is not null), l => Assert.Equal(LogLevel.Debug, l.Level));
    }

    [Fact]
    public async Task A_full_outbound_queue_makes_senders_wait_and_every_message_goes_out_in_order_once_the_connection_moves_again()
    {
        const int capacity = 4, messages = 300;
        var network = new InMemoryTransport();
        var frozen = new FreezableTransport(network);
        await using var sender = new MeshNode(new MeshOptions { OutboundQueueCapacity = capacity }, null, frozen);
        await using var receiver = new MeshNode(new MeshOptions(), null, network);
        await sender.StartAsync();
        await receiver.StartAsync();
        var inbox = new Inbox(receiver);
        await sender.ConnectAsync(receiver.Address);

        // Settled first: one open connection, no handshake pending at either end (a connection the mesh closes as a
        // duplicate drops what was queued on it, which would end every wait below at once).
        await Eventually.UntilAsync(
            () => sender.GetStatistics().Awaiting == 0 && receiver.GetStatistics().Awaiting == 0 && sender.Peers.Count == 1 && receiver.Peers.Count == 1
                && sender.GetPeer(receiver.Id) is not null && receiver.GetPeer(sender.Id) is not null,
            "one open connection between the two nodes");
        var peer = sender.GetPeer(receiver.Id)!;
        await peer.PingAsync();

        // Nothing leaves the sender: its pipe takes 64 KiB, the queue four messages, and 300 KiB of random bytes are sent
        // (a clean-clone CI run sent 1 KiB of one letter, which compression shrank to fit the pipe: every send completed).
        frozen.Freeze();
        var padding = MsgValue.Bin(System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024)); // no compression shrinks it below the pipe's 64 KiB
        var sends = new List<Task> { peer.WhisperAsync((long)SubFlag.Whisper, "m0", padding).AsTask() };
        await Eventually.UntilAsync(() => frozen.HeldWrites > 0, "the first message's bytes to be held at the frozen transport");
        sends.AddRange(Enumerable.Range(1, messages - 1).Select(i => peer.WhisperAsync((long)SubFlag.Whisper, $"m{i}", padding).AsTask()));

        Assert.True(sends.Exists(s => !s.IsCompleted), $"every send completed: closed {peer.IsClosed}, frozen {frozen.IsFrozen}, held writes {frozen.HeldWrites}, peers {sender.Peers.Count}"); // senders wait for room instead of queueing without bound
        Assert.Equal(0, inbox.CountText("m0"));

        frozen.Thaw();
        await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(30));
        await Eventually.UntilAsync(() => inbox.All.Count == messages, "every message to arrive");
        Assert.Equal(Enumerable.Range(0, messages).Select(i => $"m{i}"), inbox.All.Select(m => Inbox.TextOf(m.Message)));
        Assert.False(peer.IsClosed);
    }

    [Fact]
    public async Task Redialling_a_dead_member_backs_off_warns_once_logs_later_attempts_at_debug_and_says_once_when_it_is_back()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new LogCapture();
        var network = new InMemoryTransport();
        await using var node = new MeshNode(new MeshOptions { TimeProvider = time }, logs, network);
        await node.StartAsync();

        // A member that was there and is gone: its address now refuses connections.
        var member = new MeshNode(new MeshOptions(), null, network);
        await member.StartAsync();
        var (address, id, salt) = (member.Address, member.Id, member.Salt);
        await member.DisposeAsync();

        var first = await Assert.ThrowsAsync<MeshConnectException>(() => node.ConnectAsync(address, id));
        var skipped = await Assert.ThrowsAsync<MeshConnectException>(() => node.ConnectAsync(address, id));
        Assert.False(first.IsBackoff);
        Assert.True(skipped.IsBackoff);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            time.Advance(MeshNode.MaxDialBackoff);
            Assert.False((await Assert.ThrowsAsync<MeshConnectException>(() => node.ConnectAsync(address, id))).IsBackoff);
        }

        // Three real attempts: the first is one warning, the others Debug lines; none for the one the backoff skipped,
        // and no stack trace above Debug.
        var lines = logs.Entries.Where(l => l.Text.StartsWith("Could not reach", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(LogLevel.Warning, lines[0].Level);
        Assert.All(lines.Skip(1), l => Assert.Equal(LogLevel.Debug, l.Level));
        Assert.All(lines, l => Assert.Null(l.Exception));
        Assert.All(logs.Entries.Where(l => l.Exception is not null), l => Assert.Equal(LogLevel.Debug, l.Level));

        // It comes back (same address and salt: same id); the next dial after the backoff reaches it, with one line.
        await using var back = new MeshNode(new MeshOptions { ListenPort = address.Port, Salt = salt }, null, network);
        await back.StartAsync();
        Assert.Equal(id, back.Id);
        time.Advance(MeshNode.MaxDialBackoff);
        Assert.True((await node.ConnectAsync(address, id)).IsAuthenticated);
        var again = Assert.Single(logs.Entries, l => l.Text.Contains("is reachable again", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, again.Level);
        Assert.Contains("after 3 failed dials", again.Text, StringComparison.Ordinal);
        Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Could not reach", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_peer_named_in_a_peers_list_that_cannot_be_reached_is_noted_at_debug_without_a_warning()
    {
        // A peers list names whoever was connected to the sender a moment ago, often a `chord get --ring` client that
        // has exited since: every node dialled it and warned, one line per client per node.
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions(), logs);
        await node.StartAsync();
        var dead = DeadAddress();

        node.DialInBackground(dead, "2GoneClientId", fromPeersList: true);
        await Eventually.UntilAsync(() => logs.Entries.Any(l => l.Text.Contains("named in a peer's peers list", StringComparison.Ordinal)),
            "the failed dial to be logged");

        var line = logs.Entries.Single(l => l.Text.Contains("named in a peer's peers list", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Debug, line.Level);
        Assert.Contains(dead.ToString(), line.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Could not reach", StringComparison.Ordinal));
    }

    private static PeerAddress DeadAddress()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new PeerAddress("127.0.0.1", ((IPEndPoint)socket.LocalEndPoint!).Port); // bound, never listening: refused
    }
}
