using Chord.Dht.Mesh;

namespace Chord.Dht.Tests.Mesh;

/// <summary>A node under attack and one honest peer connected to it before the attack, with their inboxes.</summary>
internal sealed class ServingCheck : IAsyncDisposable
{
    private int _rounds;

    private ServingCheck(MeshNode node, MeshNode honest, MeshPeer link)
    {
        Node = node;
        Honest = honest;
        NodeInbox = new Inbox(node);
        HonestInbox = new Inbox(honest);
        Link = link;
    }

    /// <summary>The node under test.</summary>
    public MeshNode Node { get; }

    /// <summary>An honest peer (MaxOutgoing 0: it dials nobody from peers lists).</summary>
    public MeshNode Honest { get; }

    public Inbox NodeInbox { get; }

    public Inbox HonestInbox { get; }

    /// <summary>The node's connection to the honest peer, as it was before the attack.</summary>
    public MeshPeer Link { get; }

    /// <summary>Starts the node with <paramref name="options"/> and an honest peer that connects to it.</summary>
    public static async Task<ServingCheck> StartAsync(MeshOptions options)
    {
        var node = new MeshNode(options);
        var honest = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        try
        {
            await node.StartAsync();
            await honest.StartAsync();
            await honest.ConnectAsync(node.Address);
            await Eventually.UntilAsync(() => node.GetPeer(honest.Id) is not null, "the node has the honest peer in its routing table");
            return new ServingCheck(node, honest, node.GetPeer(honest.Id)!);
        }
        catch
        {
            await honest.DisposeAsync();
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Asserts the node still serves the honest peer on the very same connection: a broadcast and a whisper go
    /// each way.
    /// </summary>
    public async Task AssertStillServingAsync()
    {
        var round = Interlocked.Increment(ref _rounds);
        Assert.Same(Link, Node.GetPeer(Honest.Id));
        Assert.False(Link.IsClosed);

        await Honest.BroadcastAsync($"honest-broadcast-{round}");
        await Honest.WhisperAsync(Node.Id, $"honest-whisper-{round}");
        await Node.BroadcastAsync($"node-broadcast-{round}");
        await Node.WhisperAsync(Honest.Id, $"node-whisper-{round}");
        await Eventually.UntilAsync(
            () => NodeInbox.Count(Honest.Id, $"honest-broadcast-{round}") == 1 && NodeInbox.Count(Honest.Id, $"honest-whisper-{round}") == 1
                && HonestInbox.Count(Node.Id, $"node-broadcast-{round}") == 1 && HonestInbox.Count(Node.Id, $"node-whisper-{round}") == 1,
            "the node and its honest peer still exchange broadcasts and whispers");
        Assert.Same(Link, Node.GetPeer(Honest.Id));
    }

    public async ValueTask DisposeAsync()
    {
        await Honest.DisposeAsync();
        await Node.DisposeAsync();
    }
}
