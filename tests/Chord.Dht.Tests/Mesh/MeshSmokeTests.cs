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
