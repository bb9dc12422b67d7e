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
        // Nothing in this test fails on purpose: no node crashes, freezes or drops a frame, so no timeout has
        // anything to detect, and on a loaded machine (256 in-memory nodes on 2 shared cores, one run took 1 m 41 s)
        // every wall-clock bound is only a way to fail for no fault. Each is set to minutes, so that only a real
        // hang fails: the ring request (10 s) and each attempt of it (3 s; a retry around the next hop would also
        // add hops), suspicion of a slow member (3 s; it would be routed around, adding hops), the mesh's address
        // lookup (10 s), handshake (in memory unbounded, and the wait for a simultaneous dial's twin uses the longer
        // of a minute and this) and stuck-frame timeout (60 s), and the wait for the ring to converge (a minute).
        // A fake TimeProvider was the other choice, but the ring converges through its own periodic timers
        // (stabilize, maintenance) that the test would then have to advance in step with the nodes' work, so a
        // stepped clock would trade one kind of timing sensitivity for another.
        var patient = TimeSpan.FromMinutes(5);
        await using var cluster = await RingTestCluster.StartAsync(n, inMemory, configure: o =>
        {
            o.NeighbourCount = 2;
            o.RequestTimeout = patient;
            o.AttemptTimeout = patient;
            o.SuspectAfter = patient;
            o.Mesh.RequestTimeout = patient;
            o.Mesh.HandshakeTimeout = patient;
            o.Mesh.StuckFrameTimeout = patient;
        }, convergeTimeout: TimeSpan.FromMinutes(10));
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
