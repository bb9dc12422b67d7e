using System.Numerics;
using Chord.Dht.Wire;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Ring;

[Collection(ScaleCollection.Name)]
public class RoutingScaleTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(16, false)]
    [InlineData(64, true)]
    [InlineData(256, true)]
    public async Task Lookups_reach_the_owner_in_about_half_log2_N_hops(int n, bool inMemory)
    {
        // A dial completes once the dialled node has answered the authentication (a round trip through it, where a
        // py2p handshake needed none): on a loaded machine, node 0 of 256 in-memory nodes, which every new node dials,
        // has taken over the default 10 s to get to it.
        await using var cluster = await RingTestCluster.StartAsync(n, inMemory, configure: o =>
        {
            o.NeighbourCount = 2;
            o.Mesh.HandshakeTimeout = TimeSpan.FromSeconds(30);
        });
        var random = new Random(n);
        var hops = new List<int>();
        var buffer = new byte[48];
        for (var i = 0; i < 2000; i++)
        {
            random.NextBytes(buffer);
            var position = new RingPosition(new BigInteger(buffer, isUnsigned: true));
            var from = cluster.Nodes[random.Next(n)];
            var result = await from.RetrieveAsync(HashMethod.Sha384, position);
            hops.Add(result.Hops);
        }

        var mean = hops.Average();
        var bound = (0.5 * Math.Log2(n)) + 1;
        output.WriteLine($"N={n}: mean hops {mean:0.00}, max {hops.Max()}, bound {bound:0.00}");
        Assert.True(mean <= bound, $"mean hops {mean:0.00} over 2,000 lookups exceeds ½·log₂{n} + 1 = {bound:0.00}");
    }
}
