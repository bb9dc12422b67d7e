using System.Diagnostics;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;

namespace Chord.Bench;

/// <summary>N storing ring nodes in this process, on loopback TCP (port 0) or the in-memory transport, joined through node 0.</summary>
public sealed class BenchRing : IAsyncDisposable
{
    private BenchRing(List<RingNode> nodes) => Nodes = nodes;

    public IReadOnlyList<RingNode> Nodes { get; }

    /// <param name="count">How many nodes.</param>
    /// <param name="transport">The transport; null: TCP.</param>
    /// <param name="convergeTimeout">How long to wait for the ring to converge.</param>
    /// <param name="basePort">0: OS-chosen ports and random salts; otherwise node i listens on basePort + i with a fixed salt (the same ids every run).</param>
    /// <param name="configure">Changes to every node's options (after the listen address and salt are set).</param>
    public static async Task<BenchRing> StartAsync(int count, IMeshTransport? transport = null, TimeSpan? convergeTimeout = null, int basePort = 0, Action<RingOptions>? configure = null)
    {
        var nodes = new List<RingNode>(count);
        var ring = new BenchRing(nodes);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var options = new RingOptions { Mesh = { ListenHost = "127.0.0.1", ListenPort = basePort == 0 ? 0 : basePort + i } };
                if (basePort != 0)
                {
                    options.Mesh.Salt = $"chord-bench-{i}";
                }

                configure?.Invoke(options);

                var node = new RingNode(options, null, transport);
                nodes.Add(node);
                await node.StartAsync();
                if (i > 0)
                {
                    await node.ConnectAsync(nodes[0].Mesh.Address);
                }

                await node.JoinAsync();
            }

            await ring.WaitUntilConvergedAsync(convergeTimeout ?? TimeSpan.FromSeconds(120));
            return ring;
        }
        catch
        {
            await ring.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every node knows every other as a storing member and is connected to its successor.</summary>
    public bool IsConverged()
    {
        var ids = Nodes.Select(n => n.Id).ToHashSet(StringComparer.Ordinal);
        return Nodes.All(n =>
            !n.IsLeeching
            && ids.All(id => id == n.Id || n.Members.Any(m => m.Id == id && m.IsStoring))
            && (n.Next is null || n.Mesh.GetPeer(n.Next.Id) is not null));
    }

    private async Task WaitUntilConvergedAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!IsConverged())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"The {Nodes.Count}-node ring did not converge within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync() => await Task.WhenAll(Nodes.Select(n => n.DisposeAsync().AsTask()));
}
