using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

public class RingSmokeTests
{
    [Fact]
    public async Task Three_nodes_store_and_read_back_through_every_node()
    {
        await using var cluster = await RingTestCluster.StartAsync(3);
        await cluster.Nodes[0].SetAsync("hello", "world");
        foreach (var node in cluster.Nodes)
        {
            Assert.Equal(MsgValue.Str("world"), await node.GetAsync("hello"));
        }

        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => cluster.Nodes[1].GetAsync("missing"));
    }
}
