using System.Collections.Concurrent;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// Records every application message a node hands out through <see cref="MeshNode.MessageReceived"/>, keyed by
/// (original sender, first argument as text), so tests can count receipts.
/// </summary>
internal sealed class Inbox
{
    private readonly ConcurrentDictionary<(string Sender, string Text), int> _counts = new();
    private readonly ConcurrentQueue<MeshMessage> _all = new();

    public Inbox(MeshNode node)
    {
        Node = node;
        node.MessageReceived += (_, e) =>
        {
            _all.Enqueue(e.Message);
            _counts.AddOrUpdate((e.Message.Sender, TextOf(e.Message.Message)), 1, (_, n) => n + 1);
        };
    }

    public MeshNode Node { get; }

    /// <summary>Every application message received, in order of arrival.</summary>
    public IReadOnlyList<MeshMessage> All => [.. _all];

    /// <summary>How often a message from <paramref name="sender"/> whose first argument is <paramref name="text"/> arrived.</summary>
    public int Count(string sender, string text) => _counts.TryGetValue((sender, text), out var n) ? n : 0;

    /// <summary>How often any message whose first argument is <paramref name="text"/> arrived.</summary>
    public int CountText(string text) => _counts.Where(kv => kv.Key.Text == text).Sum(kv => kv.Value);

    /// <summary>The first argument of an application message as text (a str, else its printed form).</summary>
    public static string TextOf(Message message) =>
        message.Payload.Length > 1 && message.Payload[1].Kind == MsgKind.Str ? message.Payload[1].AsString() : string.Empty;
}

/// <summary>N nodes in one process, each with an <see cref="Inbox"/>, on TCP loopback or an in-memory network.</summary>
internal sealed class MeshCluster : IAsyncDisposable
{
    private readonly List<MeshNode> _nodes = [];
    private readonly List<Inbox> _inboxes = [];
    private int _barriers;

    public IReadOnlyList<MeshNode> Nodes => _nodes;

    public IReadOnlyList<Inbox> Inboxes => _inboxes;

    /// <summary>Starts <paramref name="count"/> nodes; with <paramref name="inMemory"/> they share one in-memory network.</summary>
    public static async Task<MeshCluster> StartAsync(int count, bool inMemory, Action<MeshOptions>? configure = null)
    {
        var cluster = new MeshCluster();
        var transport = inMemory ? new InMemoryTransport() : null;
        try
        {
            for (var i = 0; i < count; i++)
            {
                var options = new MeshOptions();
                configure?.Invoke(options);
                var node = new MeshNode(options, transport: transport);
                cluster._nodes.Add(node);
                cluster._inboxes.Add(new Inbox(node));
                await node.StartAsync();
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    public Inbox InboxOf(MeshNode node) => _inboxes[_nodes.IndexOf(node)];

    /// <summary>Every node but the seed dials node 0 (all at once), and only node 0; the mesh grows from its peers lists.</summary>
    public async Task JoinThroughSeedAsync()
    {
        var seed = _nodes[0];
        var peers = await Task.WhenAll(_nodes.Skip(1).Select(n => n.ConnectAsync(seed.Address)));
        Assert.All(peers, p => Assert.Equal(seed.Id, p.Id));
    }

    /// <summary>
    /// Waits until the mesh has settled: no connection awaits its handshake, every connection is in the routing
    /// tables of both ends, every node has a peer, and the graph is connected.
    /// </summary>
    public Task SettledAsync() => Eventually.UntilAsync(IsSettled, "the mesh settled: symmetric routing tables, no pending handshakes, connected");

    /// <summary>Waits until every node but <paramref name="sender"/> received (sender, text).</summary>
    public Task ReceivedEverywhereAsync(MeshNode sender, string text) => Eventually.UntilAsync(
        () => _inboxes.Where(i => i.Node != sender).All(i => i.Count(sender.Id, text) >= 1),
        $"every node received '{text}' from {sender.Id[..8]}");

    /// <summary>
    /// A barrier: every node whispers a fresh marker on every routing-table connection it has, and this waits
    /// until each marker arrived. Connections are FIFO and each connection's frames are handled one at a time, so
    /// once it returns, every frame any node queued before the barrier began has been handled by its receiver:
    /// a duplicate or stray message still in flight then would have been counted already.
    /// </summary>
    public async Task BarrierAsync()
    {
        var tag = $"barrier-{Interlocked.Increment(ref _barriers)}";
        var expected = new List<(Inbox Receiver, string Sender)>();
        foreach (var node in _nodes)
        {
            foreach (var peer in node.Peers.Where(p => !p.IsClosed))
            {
                var receiver = _nodes.Single(n => n.Id == peer.Id);
                expected.Add((InboxOf(receiver), node.Id));
                await peer.WhisperAsync((long)SubFlag.Whisper, tag);
            }
        }

        Assert.NotEmpty(expected);
        await Eventually.UntilAsync(() => expected.All(e => e.Receiver.Count(e.Sender, tag) == 1), $"every connection delivered {tag}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private bool IsSettled()
    {
        foreach (var node in _nodes)
        {
            if (node.GetStatistics().Awaiting != 0 || node.Peers.Count == 0)
            {
                return false;
            }

            foreach (var peer in node.Peers)
            {
                if (peer.IsClosed)
                {
                    return false;
                }

                var other = _nodes.FirstOrDefault(n => n.Id == peer.Id);
                if (other is null || other.GetPeer(node.Id) is null)
                {
                    return false;
                }
            }
        }

        // Connected: a search from node 0 over routing tables reaches everyone.
        var seen = new HashSet<string>(StringComparer.Ordinal) { _nodes[0].Id };
        var queue = new Queue<MeshNode>([_nodes[0]]);
        while (queue.TryDequeue(out var node))
        {
            foreach (var peer in node.Peers)
            {
                if (peer.Id is { } id && seen.Add(id))
                {
                    queue.Enqueue(_nodes.Single(n => n.Id == id));
                }
            }
        }

        return seen.Count == _nodes.Count;
    }
}
