using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Mesh;

/// <summary>PROTOCOL.md §4: a connection that stays in the middle of a frame too long is closed. Driven by a fake clock.</summary>
public class MeshStuckFrameTests
{
    private static readonly TimeSpan StuckTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_connection_stuck_in_the_middle_of_a_frame_is_closed_once_the_timeout_passes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var check = await ServingCheck.StartAsync(new MeshOptions
        {
            Security = MeshSecurity.AllowUnauthenticated,
            TimeProvider = time,
            StuckFrameTimeout = StuckTimeout,
            MaintenanceInterval = TimeSpan.FromMilliseconds(500),
            HandshakeTimeout = TimeSpan.FromHours(1), // only the stuck frame may close it
        });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var frame = FrameCodec.Encode(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "never finished", new string('x', 200)));

        await raw.SendAsync(frame.AsMemory(0, frame.Length / 2));

        // Just short of the timeout, counted from before the half frame left: the clock of a partial frame starts
        // when the node reads it, which is no earlier, so the node must not have closed it yet. Maintenance runs
        // synchronously inside Advance, so a close would already show.
        for (var elapsed = TimeSpan.Zero; elapsed < StuckTimeout - TimeSpan.FromSeconds(1); elapsed += TimeSpan.FromSeconds(1))
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.NotNull(check.Node.GetPeer(raw.Id));

        // Then on, in steps, until the node gives up on it; the other connection must not be affected.
        await Eventually.UntilAsync(
            () =>
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                return check.Node.GetPeer(raw.Id) is null;
            },
            "the node closed the connection stuck mid-frame");
        await raw.WaitClosedAsync("the raw client saw the stuck connection close");
        Assert.Equal(0, check.NodeInbox.CountText("never finished"));
        await check.AssertStillServingAsync();
    }

    [Fact]
    public async Task A_connection_that_finishes_its_frame_in_time_is_kept()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var check = await ServingCheck.StartAsync(new MeshOptions
        {
            Security = MeshSecurity.AllowUnauthenticated,
            TimeProvider = time,
            StuckFrameTimeout = StuckTimeout,
            MaintenanceInterval = TimeSpan.FromMilliseconds(500),
            HandshakeTimeout = TimeSpan.FromHours(1),
        });
        await using var raw = await RawPeer.ConnectAsync(check.Node.Address);
        await raw.HandshakeAsync(check.Node);
        var frame = FrameCodec.Encode(raw.Create(MainFlag.Whisper, (long)SubFlag.Whisper, "slow but whole"));

        await raw.SendAsync(frame.AsMemory(0, frame.Length / 2));
        time.Advance(StuckTimeout / 2);
        await raw.SendAsync(frame.AsMemory(frame.Length / 2));
        await Eventually.UntilAsync(() => check.NodeInbox.Count(raw.Id, "slow but whole") == 1, "the frame sent in two halves was delivered");

        // The node clears its mid-frame clock after handling what it read; one more whole frame handled means
        // that read is over.
        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "whole");
        await Eventually.UntilAsync(() => check.NodeInbox.Count(raw.Id, "whole") == 1, "a whole frame was delivered");

        // With nothing partial left, time may pass freely.
        time.Advance(StuckTimeout * 3);
        Assert.NotNull(check.Node.GetPeer(raw.Id));
        await raw.SendMessageAsync(MainFlag.Whisper, (long)SubFlag.Whisper, "still open");
        await Eventually.UntilAsync(() => check.NodeInbox.Count(raw.Id, "still open") == 1, "the connection still delivers");
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public async Task A_connection_that_never_handshakes_is_closed_once_the_handshake_timeout_passes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var check = await ServingCheck.StartAsync(new MeshOptions
        {
            Security = MeshSecurity.AllowUnauthenticated,
            TimeProvider = time,
            HandshakeTimeout = TimeSpan.FromSeconds(10),
            MaintenanceInterval = TimeSpan.FromMilliseconds(500),
        });
        await using var silent = await RawPeer.ConnectAsync(check.Node.Address);
        await Eventually.UntilAsync(() => check.Node.GetStatistics().Awaiting == 1, "the node accepted the silent connection");

        // Short of the timeout (counted from before the connection existed) it stays.
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(1, check.Node.GetStatistics().Awaiting);
        Assert.False(silent.IsClosed);

        await Eventually.UntilAsync(
            () =>
            {
                time.Advance(TimeSpan.FromMilliseconds(500));
                return check.Node.GetStatistics().Awaiting == 0;
            },
            "the node dropped the connection that sent no handshake");
        await silent.WaitClosedAsync("the silent client saw its connection close");
        await check.AssertStillServingAsync();
    }
}
