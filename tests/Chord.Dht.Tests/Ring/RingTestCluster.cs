using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;

namespace Chord.Dht.Tests.Ring;

/// <summary>Starts N ring nodes on loopback (TCP) or in memory, connected through node 0, all storing.</summary>
public sealed class RingTestCluster : IAsyncDisposable
{
    private readonly IMeshTransport? _transport;

    private RingTestCluster(IMeshTransport? transport) => _transport = transport;

    public List<RingNode> Nodes { get; } = [];

    public static async Task<RingTestCluster> StartAsync(int count, bool inMemory = false, bool join = true, Action<RingOptions>? configure = null)
    {
        var cluster = new RingTestCluster(inMemory ? new InMemoryTransport() : null);
        for (var i = 0; i < count; i++)
        {
            await cluster.AddNodeAsync(join, configure);
        }

        await cluster.WaitUntilConvergedAsync();
        return cluster;
    }

    public async Task<RingNode> AddNodeAsync(bool join = true, Action<RingOptions>? configure = null)
    {
        var options = new RingOptions();
        configure?.Invoke(options);
        var node = new RingNode(options, null, _transport);
        await node.StartAsync();
        if (Nodes.Count > 0)
        {
            await node.ConnectAsync(Nodes[0].Mesh.Address);
        }

        if (join)
        {
            await node.JoinAsync();
        }

        Nodes.Add(node);
        return node;
    }

    /// <summary>Waits until every node knows every storing node and is connected to its successor.</summary>
    public Task WaitUntilConvergedAsync(TimeSpan? timeout = null) =>
        Eventually.UntilAsync(() =>
        {
            var storing = Nodes.Where(n => !n.IsLeeching).Select(n => n.Id).ToHashSet();
            return Nodes.All(n =>
                storing.Where(id => id != n.Id).All(id => n.Members.Any(m => m.Id == id && m.IsStoring))
                && (n.Next is null || n.Mesh.GetPeer(n.Next.Id) is not null));
        }, timeout ?? TimeSpan.FromSeconds(60), "the ring to converge");

    public async ValueTask DisposeAsync() =>
        await Task.WhenAll(Nodes.Select(n => n.DisposeAsync().AsTask())); // together: nobody reports the others gone
}
