using Orleans.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>What only a distributed store has to show: state survives silos restarting and crashing. Each test has its own cluster.</summary>
public sealed class StorageDurabilityTests
{
    private const int GrainCount = 40;

    private static async Task<Dictionary<string, StateView>> WriteGrainsAsync(ChordTestCluster chord, string prefix)
    {
        var views = await Task.WhenAll(Enumerable.Range(0, GrainCount).Select(async i =>
        {
            var key = $"{prefix}-{i}";
            var grain = chord.Grains.GetGrain<IStringStateGrain>(key);
            await grain.Write(new TestState { A = $"first {i}", B = i });
            return (key, await grain.Write(new TestState { A = $"value {i}", B = i, C = i * 10L }));
        }));
        return views.ToDictionary(v => v.key, v => v.Item2, StringComparer.Ordinal);
    }

    /// <summary>Every grain's state, read by a fresh activation, is the one written, with the same ETag.</summary>
    private static async Task AssertAllKeptAsync(ChordTestCluster chord, Dictionary<string, StateView> expected)
    {
        await chord.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var wrong = new List<string>();
        foreach (var (key, view) in expected)
        {
            var read = await chord.Grains.GetGrain<IStringStateGrain>(key).Get();
            if (read != view)
            {
                chord.Trace?.Note($"read {key}: {read.State.A}/{read.ETag} instead of {view.State.A}/{view.ETag}");
                wrong.Add($"{key}: {read.State.A}/{read.ETag} instead of {view.State.A}/{view.ETag}");
            }
        }

        Assert.True(wrong.Count == 0, $"{wrong.Count} of {expected.Count} states lost or changed: {string.Join("; ", wrong.Take(5))}");
    }

    /// <summary>Each grain writes once more with the ETag it read: the stored ETags are still the current ones.</summary>
    private static async Task AssertAllWritableAsync(ChordTestCluster chord, Dictionary<string, StateView> expected)
    {
        await Task.WhenAll(expected.Select(async e =>
        {
            var after = await chord.Grains.GetGrain<IStringStateGrain>(e.Key).Write(e.Value.State with { A = "after" });
            Assert.NotEqual(e.Value.ETag, after.ETag);
        }));
    }

    /// <summary>Polls until the silos form one ring; on timeout says what each node knows.</summary>
    private static async Task WaitForOneRingAsync(ChordTestCluster chord, string after)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string divergence;
        while (!chord.IsOneRing(out divergence) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(Eventually.PollInterval);
        }

        Assert.True(chord.IsOneRing(out divergence), $"After {after} the silos did not form one ring within 60 s: {divergence} ({chord.Cluster.Silos.Count} silos [{string.Join(", ", chord.Cluster.Silos.Select(s => $"{s.Name} {s.SiloAddress}"))}], {chord.Nodes.Count(n => n.IsStarted)} ring nodes started)");
    }

    [Fact]
    public async Task Restarting_every_silo_one_at_a_time_keeps_all_state()
    {
        // The TestCluster's membership table lives in the primary silo, so restarting the primary ends the cluster
        // (the other silos find themselves out of a new table and stop) whatever the storage does: every other silo
        // is restarted, so of the ring nodes that held the state at first only the primary's remains.
        await using var chord = await ChordTestCluster.StartAsync(4, ChordStorageMode.Tombstone);
        var expected = await WriteGrainsAsync(chord, "restart");
        var originalIds = chord.Nodes.Select(n => n.Node.Id).ToList();

        foreach (var silo in chord.Cluster.SecondarySilos.ToList())
        {
            chord.Trace?.Note($"restarting {silo.Name} (node {ChordTestCluster.NodeOf(silo).Node.Id})");
            await chord.Cluster.RestartSiloAsync(silo);
            chord.Trace?.Note($"restarted {silo.Name}");
            await WaitForOneRingAsync(chord, $"restarting {silo.Name}");
            chord.Trace?.Note($"one ring after restarting {silo.Name}");
        }

        Assert.Single(chord.Nodes, n => originalIds.Contains(n.Node.Id));

        await AssertAllKeptAsync(chord, expected);
        await AssertAllWritableAsync(chord, expected);
    }

    [Fact]
    public async Task Killing_a_silo_keeps_all_state_and_the_rest_keep_writing()
    {
        await using var chord = await ChordTestCluster.StartAsync(3, ChordStorageMode.Delete);
        var expected = await WriteGrainsAsync(chord, "kill");
        var victim = chord.Cluster.SecondarySilos[0];

        await chord.KillSiloAsync(victim);

        await AssertAllKeptAsync(chord, expected);
        await AssertAllWritableAsync(chord, expected);

        // A stale ETag from before the kill is still refused.
        var (key, view) = expected.First();
        var stale = new GrainState<TestState> { State = new TestState { A = "stale" }, ETag = view.ETag };
        var grainId = chord.Grains.GetGrain<IStringStateGrain>(key).GetGrainId();
        await Assert.ThrowsAsync<InconsistentStateException>(() => StorageClusterFixture.StorageOf(chord.Cluster.Silos[0]).WriteStateAsync("state", grainId, stale));
    }
}
