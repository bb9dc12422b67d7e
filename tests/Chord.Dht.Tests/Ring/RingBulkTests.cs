using Xunit.Abstractions;

namespace Chord.Dht.Tests.Ring;

/// <summary>1,000 keys written through random nodes, read back through every node and through a client that never joined.</summary>
public class RingBulkTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(3)]
    [InlineData(16)]
    public async Task A_thousand_keys_written_through_random_nodes_read_back_through_every_node_and_a_leeching_client(int n)
    {
        // TCP loopback; placement copies off, so the count below is exactly one entry per position
        await using var ring = await RingTestCluster.StartAsync(n, configure: o => o.KeepPlacementCopies = false);
        var entries = RingTestData.Entries($"bulk{n}", 1000);

        await RingTestData.WriteAllAsync(ring.Nodes, entries, seed: n);

        // Each position stored once, at its owner. A write returns once three owners accepted it; the other two
        // accepts may still be on their way.
        await Eventually.UntilAsync(() => ring.Nodes.Sum(node => node.StoredCount) == 5 * entries.Count, TimeSpan.FromSeconds(30),
            $"the {5 * entries.Count} positions to be stored");
        Assert.Equal(5 * entries.Count, ring.Nodes.Sum(node => node.StoredCount));
        var client = await ring.AddNodeAsync(join: false);
        await ring.WaitUntilConvergedAsync();
        var started = DateTime.UtcNow;
        await RingTestData.AssertAllReadBackAsync(ring.Nodes, entries, $"on a ring of {n}");
        Assert.Equal(0, client.StoredCount);
        output.WriteLine($"N={n}: {entries.Count * ring.Nodes.Count} reads in {(DateTime.UtcNow - started).TotalSeconds:0.0} s");
    }
}
