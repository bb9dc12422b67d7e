using System.Text;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Bench;

/// <summary>
/// N storing ring nodes in one process on loopback TCP; callers spread over the nodes (caller i asks node i mod N)
/// read and write random keys of a pre-filled key set through <see cref="RingNode.GetAsync(byte[], CancellationToken)"/>
/// and <see cref="RingNode.SetAsync(byte[], MsgValue, CancellationToken)"/>.
/// </summary>
public static class RingScenario
{
    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var floor = await context.FloorMicrosAsync();
        var keyCount = options.Quick ? 200 : 1000;
        var table = ResultTable.Measured("Ring: RingNode get/set on loopback TCP", ["nodes", "mix", "callers", "value B"]);
        foreach (var n in options.Nodes ?? [3, 5, 16])
        {
            context.Log($"ring: starting {n} nodes");
            await using var ring = await BenchRing.StartAsync(n, basePort: options.BasePort == 0 ? 0 : options.BasePort + (100 * n));
            foreach (var size in options.Values ?? [64, 4096])
            {
                var keys = Enumerable.Range(0, keyCount).Select(i => Encoding.UTF8.GetBytes($"bench-{size}-{i}")).ToArray();
                var bytes = new byte[size];
                new Random(size).NextBytes(bytes);
                var value = MsgValue.Bin(bytes);
                await PrefillAsync(keys, (key, i) => ring.Nodes[i % n].SetAsync(key, value));
                foreach (var callers in options.Callers ?? [1, 64])
                {
                    foreach (var mix in options.Mixes ?? Mix.All)
                    {
                        context.Log($"ring: {n} nodes, {mix.Name}, {callers} callers, {size} B");
                        var m = await LoadRunner.RunAsync(callers, options.Warmup, options.Duration, (caller, random) =>
                        {
                            var node = ring.Nodes[caller % n];
                            var key = keys[random.Next(keys.Length)];
                            return mix.NextIsGet(random) ? node.GetAsync(key) : node.SetAsync(key, value);
                        }, context.Frames, context.Allocations, context.Log);
                        table.Add([n.ToString(), mix.Name, callers.ToString(), size.ToString()], m, floor);
                        if (m.FirstError is { } error)
                        {
                            table.Notes.Add($"{n} nodes, {mix.Name}, {callers} callers, {size} B: first error {error}");
                        }
                    }
                }
            }
        }

        table.Notes.Add($"{keyCount} keys per value size, written before the cells run; gets and sets pick a key uniformly. "
            + "A get is a quorum read (all five positions asked, three versioned answers decide, read repair if needed); "
            + "a set is a version query to a quorum, then a write to all five positions acknowledged by three, then a "
            + "notify broadcast of the key.");
        table.Notes.Add("Ring nodes use their defaults: snappy for frames of 256 B and more (so 4 KiB values are compressed), "
            + "RequestTimeout 10 s.");
        context.Publish("ring", [table], BenchContext.CommonNotes);
    }

    /// <summary>Writes every key once, 16 at a time.</summary>
    public static async Task PrefillAsync<T>(IReadOnlyList<T> keys, Func<T, int, Task> write)
    {
        using var gate = new SemaphoreSlim(16);
        await Task.WhenAll(keys.Select(async (key, i) =>
        {
            await gate.WaitAsync();
            try
            {
                await write(key, i);
            }
            finally
            {
                gate.Release();
            }
        }));
    }
}
