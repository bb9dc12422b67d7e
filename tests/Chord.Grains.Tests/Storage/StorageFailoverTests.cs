using Chord.Dht.Tests.Ring;
using Chord.Grains.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>
/// No silo is any key's coordinator (issue 12): each silo's storage writes through its own ring node's proposer, so a
/// frozen or killed silo stalls only what runs on it and the keys of which it holds three positions.
/// </summary>
public sealed class StorageFailoverTests
{
    private static List<GrainId> IdsWithAtMostTwoPositionsOn(ChordTestCluster chord, ChordGrainStorage storage, string nodeId, int count)
    {
        var ids = chord.Nodes.Select(n => n.Node.Id).ToList();
        return Enumerable.Range(0, 20_000)
            .Select(i => GrainId.Create("failover", $"g-{i}"))
            .Where(id => RingTestData.PositionsOwnedBy(ids, storage.RingKeyOf(id, "state"), nodeId) is 1 or 2)
            .Take(count)
            .ToList();
    }

    [Fact]
    public async Task While_one_silos_ring_node_is_frozen_the_other_silos_read_and_write_every_state_it_holds_at_most_two_positions_of()
    {
        await using var chord = await ChordTestCluster.StartAsync(4, ChordStorageMode.Tombstone, TimeSpan.FromSeconds(30));
        var frozen = chord.Nodes[3].Node;
        var storage = (ChordGrainStorage)StorageClusterFixture.StorageOf(chord.Cluster.Silos[0]);
        var ids = IdsWithAtMostTwoPositionsOn(chord, storage, frozen.Id, 12);
        var states = new Dictionary<GrainId, GrainState<TestState>>();
        foreach (var id in ids)
        {
            var state = new GrainState<TestState> { State = new TestState { A = "before" } };
            await storage.WriteStateAsync("state", id, state);
            states[id] = state;
        }

        frozen.FreezeForTest();
        try
        {
            // Each healthy silo in turn reads every state (with its ETag) and writes it on.
            foreach (var silo in chord.Cluster.Silos.Take(3))
            {
                var local = StorageClusterFixture.StorageOf(silo);
                foreach (var id in ids)
                {
                    var read = new GrainState<TestState> { State = new TestState() };
                    await local.ReadStateAsync("state", id, read);
                    Assert.Equal(states[id].ETag, read.ETag);
                    Assert.Equal(states[id].State!.A, read.State!.A);
                    read.State = new TestState { A = $"written on {silo.SiloAddress} while frozen" };
                    await local.WriteStateAsync("state", id, read);
                    states[id] = read;
                }
            }
        }
        finally
        {
            frozen.ThawForTest();
        }

        // The thawed silo's storage reads the latest of each, ETag included.
        var thawed = StorageClusterFixture.StorageOf(chord.Cluster.Silos[3]);
        foreach (var id in ids)
        {
            var read = new GrainState<TestState> { State = new TestState() };
            await thawed.ReadStateAsync("state", id, read);
            Assert.Equal(states[id].ETag, read.ETag);
            Assert.Equal(states[id].State!.A, read.State!.A);
        }
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
