using Chord.Interfaces;

namespace Chord.Grains.Tests;

/// <summary>Silos joining, leaving and crashing: each test has its own cluster.</summary>
public sealed class RingMembershipTests
{
    private const int KeyCount = 60;

    private static async Task WriteKeysAsync(ChordTestCluster chord, string prefix)
    {
        await Task.WhenAll(Enumerable.Range(0, KeyCount).Select(i => chord.Grains.GetGrain<IChordKeyGrain>($"{prefix}-{i}").Set($"value-{i}")));
    }

    private static async Task AssertAllKeysReadAsync(ChordTestCluster chord, string prefix)
    {
        var missing = new List<string>();
        foreach (var i in Enumerable.Range(0, KeyCount))
        {
            var value = await chord.Grains.GetGrain<IChordKeyGrain>($"{prefix}-{i}").Get();
            if (value?.AsString() != $"value-{i}")
            {
                missing.Add($"{prefix}-{i}={value}");
            }
        }

        Assert.True(missing.Count == 0, $"{missing.Count} keys lost or wrong: {string.Join(", ", missing.Take(10))}");
    }

    [Fact]
    public async Task A_silo_added_later_joins_the_ring_and_receives_its_share()
    {
        await using var chord = await ChordTestCluster.StartAsync(3);
        await WriteKeysAsync(chord, "before-join");

        var added = await chord.Cluster.StartAdditionalSiloAsync();
        await chord.WaitUntilOneRingAsync();
        var node = ChordTestCluster.NodeOf(added).Node;
        Assert.False(node.IsLeeching);

        // 60 keys x 5 positions over 4 nodes: the newcomer owns some of them and must have been handed them.
        await Eventually.UntilAsync(() => node.StoredCount > 0, "the new silo's node holds its share of the entries");
        await AssertAllKeysReadAsync(chord, "before-join");

        var status = await chord.Grains.GetGrain<IChordRingGrain>(0).GetStatus();
        var member = Assert.Single(status.Members, m => m.NodeId == node.Id);
        Assert.Equal(added.SiloAddress.ToParsableString(), member.Silo);
        Assert.True(member.Share > 0);
        Assert.Equal(4, status.Members.Count(m => m.IsStoring && m.Silo is not null));
        Assert.Equal(1.0, status.Members.Sum(m => m.Share), 3);
    }

    [Fact]
    public async Task A_silo_stopped_gracefully_hands_off_and_loses_no_data()
    {
        await using var chord = await ChordTestCluster.StartAsync(3);
        await WriteKeysAsync(chord, "graceful");
        var leaving = chord.Cluster.SecondarySilos[0];
        var leavingId = ChordTestCluster.NodeOf(leaving).Node.Id;

        await chord.Cluster.StopSiloAsync(leaving);

        await chord.WaitUntilOneRingAsync();
        Assert.All(chord.Nodes, n => Assert.DoesNotContain(n.Node.Members, m => m.Id == leavingId && m.IsStoring));
        await AssertAllKeysReadAsync(chord, "graceful");
    }

    [Fact]
    public async Task A_killed_silo_loses_no_acknowledged_key_and_leaves_the_ring()
    {
        await using var chord = await ChordTestCluster.StartAsync(3);
        await WriteKeysAsync(chord, "killed");
        var victim = chord.Cluster.SecondarySilos[0];

        await chord.KillSiloAsync(victim);

        await AssertAllKeysReadAsync(chord, "killed");

        // And the ring keeps taking writes with one silo fewer.
        await WriteKeysAsync(chord, "after-kill");
        await AssertAllKeysReadAsync(chord, "after-kill");
    }
}
