using System.Numerics;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;

namespace Chord.Bench;

/// <summary>
/// Routing at scale: N storing nodes on the in-memory transport (no sockets, so 256 nodes fit on 2 cores); one
/// caller retrieves random positions from random nodes. Reports hops and frames per lookup, and the managed memory
/// the ring added per node.
/// </summary>
public static class ScaleScenario
{
    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var floor = await context.FloorMicrosAsync();
        var table = new ResultTable("Scale: single-position lookups (RetrieveAsync) on the in-memory transport",
            ["nodes", "mean hops", "p99 hops", "max hops", "½·log₂N+1", "memory/node KiB", "start s", .. ResultTable.MeasuredColumns]);
        foreach (var n in options.ScaleNodes ?? (options.Quick ? [16, 64] : [16, 64, 256]))
        {
            context.Log($"scale: starting {n} nodes in memory");
            var before = SettledHeapBytes();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await using var ring = await BenchRing.StartAsync(n, new InMemoryTransport(), TimeSpan.FromMinutes(5));
            var started = clock.Elapsed;
            var perNode = (SettledHeapBytes() - before) / (double)n;
            var hops = new List<int>();
            context.Log($"scale: {n} nodes up in {started.TotalSeconds:0.0} s; lookups");
            var m = await LoadRunner.RunAsync(1, options.Warmup, options.Duration, async (_, random) =>
            {
                var bytes = new byte[48];
                random.NextBytes(bytes);
                var position = new RingPosition(new BigInteger(bytes, isUnsigned: true));
                var result = await ring.Nodes[random.Next(n)].RetrieveAsync(HashMethod.Sha384, position);
                hops.Add(result.Hops);
            }, context.Frames, context.Allocations, context.Log);
            hops.Sort();
            table.Add(
            [
                n.ToString(),
                ResultTable.N(hops.Average(), "0.00"),
                hops[(int)Math.Min(hops.Count - 1, Math.Ceiling(0.99 * hops.Count) - 1)].ToString(),
                hops[^1].ToString(),
                ResultTable.N((0.5 * Math.Log2(n)) + 1, "0.00"),
                ResultTable.N(perNode / 1024, "#,0"),
                ResultTable.N(started.TotalSeconds, "0.0"),
                .. ResultTable.Cells(m, floor),
            ]);
        }

        table.Notes.Add("Hops are counted by the answer (RetrieveResult.Hops) over every lookup, warm-up included; 0 means "
            + "the asking node owned the position. `frames/op` counts request and answer frames of every hop.");
        table.Notes.Add("`memory/node` is GC.GetTotalMemory after full collections and the finalizers they queued, with the ring started and converged, "
            + "minus the same before, divided by N: managed memory only (no socket buffers; the transport is in memory), "
            + "with no keys stored.");
        table.Notes.Add("The ×floor columns compare in-memory lookups with the TCP floor, so they can fall below 1.");
        context.Publish("scale", [table], BenchContext.CommonNotes);
    }

    /// <summary>
    /// The managed heap once what is dead is gone: a full collection, the finalizers it queued (a previous scenario's
    /// disposed silos and sockets), and another collection for what they released. One collection left those alive for
    /// the baseline and freed them after the ring started: 16 nodes measured -2,416 KiB per node.
    /// </summary>
    private static long SettledHeapBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
