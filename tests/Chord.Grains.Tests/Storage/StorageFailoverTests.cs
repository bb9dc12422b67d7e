using Chord.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Chord.Dht.Tests.Ring;
using Chord.Grains.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>
/// No silo is any key's coordinator (issue 12): each silo's storage writes through its own ring node's proposer, so a
/// frozen or killed silo stalls only what runs on it and the keys of which it holds three positions.
/// </summary>
public sealed class StorageFailoverTests
{
    private static List<GrainId> IdsWithPositionsOn(ChordTestCluster chord, ChordGrainStorage storage, string nodeId, Func<int, bool> positions, int count)
    {
        var ids = chord.Nodes.Select(n => n.Node.Id).ToList();
        return Enumerable.Range(0, 20_000)
            .Select(i => GrainId.Create("failover", $"g-{i}"))
            .Where(id => positions(RingTestData.PositionsOwnedBy(ids, storage.RingKeyOf(id, "state"), nodeId)))
            .Take(count)
            .ToList();
    }

    /// <summary>Runs a storage or grain call and fails the test if it neither completes nor fails well after the deadline.</summary>
    private static async Task<Exception?> FinishesAsync(Func<Task> call, TimeSpan deadline, string what)
    {
        var run = call();
        try
        {
            await run.WaitAsync(deadline * 3);
            return null;
        }
        catch (TimeoutException) when (!run.IsCompleted)
        {
            throw new Xunit.Sdk.XunitException($"{what} was still waiting {deadline * 3} after it started (the request deadline is {deadline}): it stalled on the frozen silo.");
        }
        catch (Exception e)
        {
            return e;
        }
    }

    [Fact]
    public async Task While_one_silos_ring_connections_carry_nothing_no_state_or_key_waits_on_it_beyond_the_deadline_and_all_catch_up_when_it_answers_again()
    {
        var deadline = TimeSpan.FromSeconds(6);
        await using var chord = await ChordTestCluster.StartAsync(4, ChordStorageMode.Tombstone, deadline, freezableTransport: true);
        var frozenSilo = chord.Cluster.Silos[3];
        var frozen = ChordTestCluster.NodeOf(frozenSilo).Node;
        var healthy = chord.Cluster.Silos.Take(3).ToList();
        var storage = (ChordGrainStorage)StorageClusterFixture.StorageOf(healthy[0]);

        // States the frozen silo holds none, one or two of the five positions of (a quorum elsewhere), and states it
        // holds three or more of (no quorum without it: those must fail at the deadline, not hang).
        var servable = IdsWithPositionsOn(chord, storage, frozen.Id, p => p <= 2, 9);
        var stuck = IdsWithPositionsOn(chord, storage, frozen.Id, p => p >= 3, 2);
        var states = new Dictionary<GrainId, GrainState<TestState>>();
        foreach (var id in servable.Concat(stuck))
        {
            var state = new GrainState<TestState> { State = new TestState { A = "before" } };
            await storage.WriteStateAsync("state", id, state);
            states[id] = state;
        }

        // Keys written through IChordKeyGrain on each healthy silo (a stateless worker: it runs on the calling silo).
        var ringIds = chord.Nodes.Select(n => n.Node.Id).ToList();
        var keys = Enumerable.Range(0, 10_000).Select(i => $"frozen-key-{i}")
            .Where(k => RingTestData.PositionsOwnedBy(ringIds, k, frozen.Id) <= 2).Take(6).ToList();
        var transport = ChordTestCluster.TransportOf(frozenSilo);
        transport.Freeze();
        try
        {
            foreach (var silo in healthy)
            {
                var local = StorageClusterFixture.StorageOf(silo);
                foreach (var id in servable)
                {
                    var read = new GrainState<TestState> { State = new TestState() };
                    Assert.Null(await FinishesAsync(() => local.ReadStateAsync("state", id, read), deadline, $"reading {id} on {silo.SiloAddress}"));
                    Assert.Equal(states[id].ETag, read.ETag);
                    Assert.Equal(states[id].State!.A, read.State!.A);
                    read.State = new TestState { A = $"written on {silo.SiloAddress} while frozen" };
                    Assert.Null(await FinishesAsync(() => local.WriteStateAsync("state", id, read), deadline, $"writing {id} on {silo.SiloAddress}"));
                    states[id] = read;
                }

                var grains = ((InProcessSiloHandle)silo).SiloHost.Services.GetRequiredService<IGrainFactory>();
                foreach (var key in keys)
                {
                    var grain = grains.GetGrain<IChordKeyGrain>(key);
                    Assert.Null(await FinishesAsync(() => grain.Set(ChordValue.From($"set on {silo.SiloAddress}")), deadline, $"setting {key} on {silo.SiloAddress}"));
                    ChordValue? got = null;
                    Assert.Null(await FinishesAsync(async () => got = await grain.Get(), deadline, $"getting {key} on {silo.SiloAddress}"));
                    Assert.Equal($"set on {silo.SiloAddress}", got?.Value.AsString());
                }
            }

            // A state with three positions on the frozen silo fails with a storage error at the deadline.
            foreach (var id in stuck)
            {
                var write = new GrainState<TestState> { State = new TestState { A = "no quorum" }, ETag = states[id].ETag, RecordExists = true };
                var failure = await FinishesAsync(() => StorageClusterFixture.StorageOf(healthy[1]).WriteStateAsync("state", id, write), deadline, $"writing {id}");
                Assert.IsType<ChordGrainStorageException>(failure);
            }

            // The frames were swallowed on the wire, and the other silos noticed the silence.
            Assert.True(transport.HeldReads > 0, "frames meant for the frozen silo were held on its connections");
            await Eventually.UntilAsync(
                () => healthy.All(s => ChordTestCluster.NodeOf(s).Node.IsSuspect(frozen.Id)),
                TimeSpan.FromSeconds(30),
                "every healthy silo's ring node to suspect the frozen one");
        }
        finally
        {
            transport.Thaw();
        }

        // Answering again, the frozen silo's own storage reads the latest of every state, ETag included, and a state it
        // held three positions of is readable and writable again everywhere (its failed write may or may not be there).
        var thawed = StorageClusterFixture.StorageOf(frozenSilo);
        foreach (var id in servable)
        {
            var read = new GrainState<TestState> { State = new TestState() };
            await thawed.ReadStateAsync("state", id, read);
            Assert.Equal(states[id].ETag, read.ETag);
            Assert.Equal(states[id].State!.A, read.State!.A);
        }

        foreach (var id in stuck)
        {
            var read = new GrainState<TestState> { State = new TestState() };
            await StorageClusterFixture.StorageOf(healthy[2]).ReadStateAsync("state", id, read);
            Assert.Contains(read.State!.A, new[] { "before", "no quorum" });
            read.State = new TestState { A = "after the thaw" };
            await StorageClusterFixture.StorageOf(healthy[0]).WriteStateAsync("state", id, read);
            var again = new GrainState<TestState> { State = new TestState() };
            await thawed.ReadStateAsync("state", id, again);
            Assert.Equal("after the thaw", again.State!.A);
        }

        await Eventually.UntilAsync(
            () => healthy.All(s => !ChordTestCluster.NodeOf(s).Node.IsSuspect(frozen.Id)),
            TimeSpan.FromSeconds(30),
            "the healthy silos to clear their suspicion once the frozen one answers");
    }

    [Fact]
    public async Task After_a_silo_is_killed_every_state_is_readable_and_writable_through_each_survivor()
    {
        await using var chord = await ChordTestCluster.StartAsync(4, ChordStorageMode.Tombstone, TimeSpan.FromSeconds(10));
        var storage = StorageClusterFixture.StorageOf(chord.Cluster.Silos[0]);
        var ids = Enumerable.Range(0, 30).Select(i => GrainId.Create("killed", $"k-{i}")).ToList();
        var states = new Dictionary<GrainId, GrainState<TestState>>();
        foreach (var id in ids)
        {
            var state = new GrainState<TestState> { State = new TestState { A = "before" } };
            await storage.WriteStateAsync("state", id, state);
            states[id] = state;
        }

        var victim = chord.Cluster.Silos[2];
        await chord.KillSiloAsync(victim);

        // Every survivor (the killed silo held some positions of every key, three or more of some) reads each state
        // with its ETag and writes it on, once the ring has re-created the lost positions.
        foreach (var silo in chord.Cluster.Silos.Where(s => s != victim).ToList())
        {
            var local = StorageClusterFixture.StorageOf(silo);
            foreach (var id in ids)
            {
                var read = new GrainState<TestState> { State = new TestState() };
                await Eventually.UntilAsync(async () =>
                {
                    try
                    {
                        await local.ReadStateAsync("state", id, read);
                        return true;
                    }
                    catch (ChordGrainStorageException)
                    {
                        return false;
                    }
                }, TimeSpan.FromSeconds(60), $"the state of {id} to be readable through {silo.SiloAddress}");
                Assert.Equal(states[id].ETag, read.ETag);
                read.State = new TestState { A = $"after the kill, on {silo.SiloAddress}" };
                await local.WriteStateAsync("state", id, read);
                states[id] = read;
            }
        }
    }
}
