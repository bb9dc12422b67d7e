using Chord.Testing;
using Orleans.TestingHost;
using StackExchange.Redis;

namespace Chord.Bench;

/// <summary>
/// A grain that calls WriteStateAsync or ReadStateAsync on its <c>[PersistentState]</c>, on three providers in one
/// run: ours on the ring (<c>AddChordGrainStorage("chord")</c>), Orleans' memory storage, and Orleans' Redis storage
/// against a <c>redis-server</c> this scenario starts on 127.0.0.1 and stops afterwards.
/// </summary>
public static class StorageScenario
{
    private const string RedisProperty = "BenchRedis";

    private const string BasePortProperty = "BenchBasePort";

    /// <summary>The providers measured, in table order: (name, grain factory).</summary>
    private static readonly (string Name, Func<IGrainFactory, long, IStorageBenchGrain> Grain)[] Providers =
    [
        ("chord", (f, k) => f.GetGrain<IChordStateBenchGrain>(k)),
        ("memory", (f, k) => f.GetGrain<IMemoryStateBenchGrain>(k)),
        ("redis", (f, k) => f.GetGrain<IRedisStateBenchGrain>(k)),
    ];

    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var floor = await context.FloorMicrosAsync();
        var table = ResultTable.Measured("Storage: WriteStateAsync / ReadStateAsync on [PersistentState], 3 silos", ["provider", "op", "callers", "value B"]);
        var ratios = new ResultTable("Storage: ours / memory and ours / redis (ops/s, and p50 latency)",
            ["op", "callers", "value B", "chord ops/s", "memory ops/s", "redis ops/s", "chord/memory ops/s", "chord/redis ops/s", "chord/redis p50"]);
        var results = new Dictionary<(string, string, int, int), Measurement>();
        var executable = LocalRedisServer.FindExecutable() ?? await LocalRedisServer.InstallAsync(context.Log);
        using var redis = await LocalRedisServer.StartAsync(executable);
        context.Log($"redis-server {executable} on {redis.Endpoint}, persistence off");
        context.Log("storage: starting a 3-silo cluster with the chord, memory and redis providers");
        await using (var cluster = await BenchCluster.StartAsync<StorageSilo>(3, new Dictionary<string, string>
        {
            [RedisProperty] = redis.Endpoint,
            [BasePortProperty] = options.BasePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }))
        {
            foreach (var size in options.Values ?? [64, 4096])
            {
                foreach (var callers in options.Callers ?? [1, 64])
                {
                    foreach (var op in new[] { "write", "read" })
                    {
                        foreach (var (name, grainOf) in Providers)
                        {
                            // Grain keys: a fresh range per cell, written once before the cell, so a read finds a payload.
                            var keyBase = (long)size * 1_000_000 + callers * 1_000;
                            var grains = Enumerable.Range(0, callers).Select(i => grainOf(cluster.Client, keyBase + i)).ToArray();
                            await Task.WhenAll(grains.Select(g => g.Write(size)));
                            context.Log($"storage: {name} {op}, {callers} callers, {size} B");
                            var m = await LoadRunner.RunAsync(callers, options.Warmup, options.Duration,
                                (caller, _) => op == "write" ? grains[caller].Write(size) : grains[caller].Read(), context.Frames, context.Allocations, context.Log);
                            results[(name, op, callers, size)] = m;
                            table.Add([name, op, callers.ToString(), size.ToString()], m, floor);
                            if (m.FirstError is { } error)
                            {
                                table.Notes.Add($"{name} {op}, {callers} callers, {size} B: first error {error}");
                            }
                        }

                        var chord = results[("chord", op, callers, size)];
                        var memory = results[("memory", op, callers, size)];
                        var red = results[("redis", op, callers, size)];
                        ratios.Add(
                            op, callers.ToString(), size.ToString(),
                            ResultTable.N(chord.OpsPerSecond, "#,0"), ResultTable.N(memory.OpsPerSecond, "#,0"), ResultTable.N(red.OpsPerSecond, "#,0"),
                            ResultTable.N(chord.OpsPerSecond / memory.OpsPerSecond, "0.00"),
                            ResultTable.N(chord.OpsPerSecond / red.OpsPerSecond, "0.00"),
                            ResultTable.N(chord.Latency.PercentileMicros(0.5) / red.Latency.PercentileMicros(0.5), "0.00"));
                    }
                }
            }
        }

        table.Notes.Add("Each caller has its own grain (calls to one activation run one at a time); a write changes one byte "
            + "of the payload and calls WriteStateAsync, a read calls ReadStateAsync. Every call goes client → gateway "
            + "silo → the grain's silo, so the Orleans hop is in every provider's numbers alike.");
        table.Notes.Add("`frames/op` counts ring frames only: they are zero for memory and redis. Redis runs as a separate "
            + "process (`redis-server`, persistence off) on the same 2 cores, so its own CPU is not in `alloc B/op`.");
        ratios.Notes.Add("Ratios above 1 mean ours is faster (ops/s) or slower (p50); the target is chord write ops/s ≥ redis write ops/s.");
        context.Publish("storage", [table, ratios], BenchContext.CommonNotes);
    }

    private sealed class StorageSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var redis = siloBuilder.Configuration[RedisProperty]
                ?? throw new InvalidOperationException($"The storage silo needs the '{RedisProperty}' property (the redis-server address).");
            var basePort = int.Parse(siloBuilder.Configuration[BasePortProperty] ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            var siloName = siloBuilder.Configuration["Orleans:Name"] ?? ""; // TestingHost's silo name
            siloBuilder.AddChord(options =>
            {
                options.ListenHost = "127.0.0.1";
                options.JoinTimeout = TimeSpan.FromSeconds(30);
                if (basePort != 0)
                {
                    // --base-port: one layout in every run (each silo's ring id from a fixed port and salt), so that
                    // runs compare like for like; otherwise each run draws its own, and frames per write move with it.
                    options.RingPort = basePort + SiloIndex(siloName);
                    options.NodeIdSalt = "bench-" + siloName;
                }
            });
            siloBuilder.AddChordGrainStorage("chord");
            siloBuilder.AddMemoryGrainStorage("memory");
            siloBuilder.AddRedisGrainStorage("redis", options => options.ConfigurationOptions = ConfigurationOptions.Parse(redis));
        }

        /// <summary>TestingHost names its silos Primary, Secondary_1, Secondary_2, ...: 0, 1, 2, ...</summary>
        private static int SiloIndex(string siloName) =>
            siloName.StartsWith("Secondary_", StringComparison.Ordinal) && int.TryParse(siloName.AsSpan("Secondary_".Length), out var n) ? n
            : siloName == "Primary" ? 0
            : throw new InvalidOperationException($"Unexpected TestingHost silo name '{siloName}': --base-port needs Primary or Secondary_N to give each silo its own port.");
    }
}
