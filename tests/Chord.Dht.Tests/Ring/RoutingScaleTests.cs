using System.Numerics;
using Chord.Dht.Tests.Simulation;
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
        // Nothing in this test fails on purpose: no node crashes, freezes or drops a frame, so no time-out has anything
        // to detect; on a loaded machine (256 in-memory nodes on 2 shared cores) a wall-clock time-out would only be a
        // way to fail for no fault. So the in-memory rings run on a clock that moves only while the process is idle
        // (IdleClock): the ring converges through its own stabilize and maintenance timers, which fire as fast as
        // the machine lets the nodes finish their work, and no deadline (request, attempt, suspicion, handshake, stuck
        // frame) can expire because the machine was slow. The TCP ring (16 nodes) runs on the system clock. Each
        // bound is also set to minutes, as a second line: the idle check can mistake a thread descheduled in the middle
        // of a work item for an idle process, and each such moment moves the clock by one step.
        using var clock = inMemory ? new IdleClock(TimeSpan.FromMilliseconds(20)) : null;
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
            if (clock is not null)
            {
                o.Mesh.TimeProvider = clock.Time;
            }
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
        output.WriteLine($"N={n}: mean hops {mean:0.00}, max {hops.Max()}, bound {bound:0.00}"
            + (clock is null ? "" : $"; the idle clock moved {clock.Steps} times ({clock.Steps * clock.Step.TotalSeconds:0} s of ring time)"));
        Assert.True(mean <= bound, $"mean hops {mean:0.00} over 2,000 lookups exceeds ½·log₂{n} + 1 = {bound:0.00}");
    }
}
