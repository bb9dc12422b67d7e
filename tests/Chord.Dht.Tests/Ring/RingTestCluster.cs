using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>Starts N ring nodes on loopback (TCP) or in memory, connected through node 0, all storing.</summary>
public sealed class RingTestCluster : IAsyncDisposable
{
    private readonly IMeshTransport? _transport;
    private readonly Action<RingOptions>? _configure;
    private readonly bool _freezable;
    private readonly Microsoft.Extensions.Logging.ILoggerFactory? _logs;
    private readonly Dictionary<RingNode, FreezableTransport> _freezables = [];

    private RingTestCluster(IMeshTransport? transport, Action<RingOptions>? configure, bool freezable, Microsoft.Extensions.Logging.ILoggerFactory? logs)
    {
        _logs = logs;
        _transport = transport;
        _configure = configure;
        _freezable = freezable;
    }

    public List<RingNode> Nodes { get; } = [];

    /// <summary>The in-memory network the nodes share, or null for TCP loopback.</summary>
    public IMeshTransport? Transport => _transport;

    /// <summary>The nodes that have joined (store data).</summary>
    public IReadOnlyList<RingNode> Storing => [.. Nodes.Where(n => !n.IsLeeching)];

    /// <param name="count">How many nodes.</param>
    /// <param name="inMemory">In-memory pipes instead of loopback TCP.</param>
    /// <param name="join">Whether the nodes join (store) or only connect.</param>
    /// <param name="configure">Settings for every node.</param>
    /// <param name="freezable">Each node's connections go through its own <see cref="FreezableTransport"/> (see <see cref="FreezableOf"/>).</param>
    /// <param name="convergeTimeout">How long to wait for the ring to converge (default: a minute).</param>
    /// <param name="logs">Where every node logs (null: nowhere).</param>
    public static async Task<RingTestCluster> StartAsync(
        int count, bool inMemory = false, bool join = true, Action<RingOptions>? configure = null, bool freezable = false, TimeSpan? convergeTimeout = null,
        Microsoft.Extensions.Logging.ILoggerFactory? logs = null)
    {
        var cluster = new RingTestCluster(inMemory ? new InMemoryTransport() : null, configure, freezable, logs);
        for (var i = 0; i < count; i++)
        {
            await cluster.AddNodeAsync(join, configure);
        }

        await cluster.WaitUntilConvergedAsync(convergeTimeout);
        return cluster;
    }

    /// <summary>Starts one more node, connects it to node 0 and, when <paramref name="join"/>, joins it.</summary>
    /// <remarks>Without <paramref name="configure"/>, the node gets the settings the cluster was started with.</remarks>
    public async Task<RingNode> AddNodeAsync(bool join = true, Action<RingOptions>? configure = null)
    {
        var options = new RingOptions();
        (configure ?? _configure)?.Invoke(options);
        FreezableTransport? freezable = _freezable ? new FreezableTransport(_transport ?? TcpTransport.Instance) : null;
        var node = new RingNode(options, _logs, freezable ?? _transport);
        if (freezable is not null)
        {
            _freezables[node] = freezable;
        }

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

    /// <summary>The transport of a node of a cluster started with <c>freezable: true</c>: freezing it freezes the node on the wire.</summary>
    public FreezableTransport FreezableOf(RingNode node) =>
        _freezables.TryGetValue(node, out var transport) ? transport : throw new InvalidOperationException("The cluster was not started with freezable: true.");

    /// <summary>Takes a node out of the cluster (it is no longer disposed with it) and returns it.</summary>
    public RingNode Remove(RingNode node)
    {
        Assert.True(Nodes.Remove(node), "the node to remove is not in the cluster");
        return node;
    }

    /// <summary>Waits until every node knows every storing node and is connected to its successor.</summary>
    public async Task WaitUntilConvergedAsync(TimeSpan? timeout = null)
    {
        try
        {
            await Eventually.UntilAsync(IsConverged, timeout ?? TimeSpan.FromSeconds(60), "the ring to converge");
        }
        catch (Xunit.Sdk.XunitException e)
        {
            // Eventually fails the test through xunit (not a TimeoutException): say what kept the ring apart.
            throw new TimeoutException($"{e.Message} {DescribeDivergence()}", e);
        }
    }

    /// <summary>
    /// A node and a key (<paramref name="prefix"/>-N) none of whose five positions that node owns, so its requests for
    /// the key all go over the wire. Node ids are random, so one node may own most of the ring and no key of a thousand
    /// qualify for it; some node owns at most a 1/N share, and for it about ((N-1)/N)^5 of keys do (one in eight with
    /// three nodes).
    /// </summary>
    public (RingNode Node, string Key) NodeOwningNoPositionOf(string prefix) =>
        Nodes
            .SelectMany(n => Enumerable.Range(0, 1_000).Select(i => (Node: n, Key: $"{prefix}-{i}")))
            .First(c => KeyHashes.All(RingNode.KeyBytes(c.Key)).All(p => c.Node.Find(p)!.Id != c.Node.Id));

    /// <summary>What keeps the ring from converging, node by node, for a failure message.</summary>
    public string DescribeDivergence()
    {
        var storing = Nodes.Where(n => !n.IsLeeching).Select(n => n.Id).ToHashSet();
        var lines = new List<string>();
        foreach (var n in Nodes)
        {
            var missing = storing.Where(id => id != n.Id && !n.Members.Any(m => m.Id == id && m.IsStoring))
                .Select(id => $"{RingTestData.Short(id)} ({n.DescribeMemberForTest(id)}; itself at {Nodes.First(x => x.Id == id).Self.Epoch})").ToList();
            var stale = n.Members.Where(m => m.IsStoring && !storing.Contains(m.Id) && Nodes.Any(x => x.Id == m.Id)).Select(m => RingTestData.Short(m.Id)).ToList();
            var next = n.Next;
            var unconnected = next is not null && n.Mesh.GetPeer(next.Id) is null;
            if (missing.Count > 0 || stale.Count > 0 || unconnected || (!n.IsLeeching && !n.IsServing))
            {
                lines.Add($"node {RingTestData.Short(n.Id)} ({(n.IsLeeching ? "leeching" : n.IsServing ? "storing" : "storing, not serving yet")}, {n.Mesh.Peers.Count} peers): "
                    + $"lacks [{string.Join(", ", missing)}], wrongly storing [{string.Join(", ", stale)}]"
                    + (unconnected ? $", not connected to its successor {RingTestData.Short(next!.Id)}" : string.Empty)
                    + (!n.IsLeeching && !n.IsServing ? $", {n.DescribeFenceForTest()}" : string.Empty));
            }
        }

        return string.Join("; ", lines);
    }

    /// <summary>
    /// True when every node knows exactly the storing nodes as storing members (no stale member left storing) and is
    /// connected to its successor.
    /// </summary>
    public bool IsConverged()
    {
        var storing = Nodes.Where(n => !n.IsLeeching).Select(n => n.Id).ToHashSet();
        return Nodes.All(n =>
            storing.Where(id => id != n.Id).All(id => n.Members.Any(m => m.Id == id && m.IsStoring))
            && n.Members.Where(m => m.IsStoring).All(m => storing.Contains(m.Id) || !Nodes.Any(x => x.Id == m.Id))
            && (n.Next is null || n.Mesh.GetPeer(n.Next.Id) is not null)
            && (n.IsLeeching || n.IsServing));
    }

    public async ValueTask DisposeAsync() =>
        await Task.WhenAll(Nodes.Select(n => n.DisposeAsync().AsTask())); // together: nobody reports the others gone
}
