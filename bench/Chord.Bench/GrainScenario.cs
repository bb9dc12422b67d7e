using Chord.Interfaces;
using Orleans.TestingHost;

namespace Chord.Bench;

/// <summary>
/// A 3-silo Orleans cluster in this process (TestingHost) with <c>AddChord</c>; ring nodes on loopback TCP. The
/// client calls <see cref="IChordKeyGrain"/> Get and Set for random keys of a pre-filled key set.
/// </summary>
public static class GrainScenario
{
    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var floor = await context.FloorMicrosAsync();
        var keyCount = options.Quick ? 200 : 1000;
        var table = ResultTable.Measured("Grain: IChordKeyGrain Get/Set from a client, 3 silos", ["silos", "mix", "callers", "value B"]);
        context.Log("grain: starting a 3-silo cluster");
        await using (var cluster = await BenchCluster.StartAsync<ChordSilo>(3))
        {
            foreach (var size in options.Values ?? [64, 4096])
            {
                var bytes = new byte[size];
                new Random(size).NextBytes(bytes);
                var value = ChordValue.From(bytes);
                var grains = Enumerable.Range(0, keyCount).Select(i => cluster.Client.GetGrain<IChordKeyGrain>($"bench-{size}-{i}")).ToArray();
                await RingScenario.PrefillAsync(grains, (g, _) => g.Set(value));
                foreach (var callers in options.Callers ?? [1, 64])
                {
                    foreach (var mix in options.Mixes ?? Mix.All)
                    {
                        context.Log($"grain: {mix.Name}, {callers} callers, {size} B");
                        var m = await LoadRunner.RunAsync(callers, options.Warmup, options.Duration, (_, random) =>
                        {
                            var grain = grains[random.Next(grains.Length)];
                            return mix.NextIsGet(random) ? grain.Get() : grain.Set(value);
                        }, context.Frames, context.Allocations, context.Log);
                        table.Add(["3", mix.Name, callers.ToString(), size.ToString()], m, floor);
                        if (m.FirstError is { } error)
                        {
                            table.Notes.Add($"{mix.Name}, {callers} callers, {size} B: first error {error}");
                        }
                    }
                }
            }
        }

        table.Notes.Add($"{keyCount} keys (grains) per value size, written before the cells run. The client reaches a gateway "
            + "silo over loopback TCP; the key grain's activation (random placement) calls its silo's ring node, which "
            + "does the same quorum read or write as the ring scenario.");
        table.Notes.Add("`frames/op` and `bytes/op` count ring frames only, not Orleans' own messages (client to silo, silo to silo).");
        context.Publish("grain", [table], BenchContext.CommonNotes);
    }

    private sealed class ChordSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder.AddChord(options =>
        {
            options.ListenHost = "127.0.0.1";
            options.JoinTimeout = TimeSpan.FromSeconds(30);
        });
    }
}
