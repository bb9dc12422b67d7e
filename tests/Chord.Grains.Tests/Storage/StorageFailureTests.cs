using Chord.Dht.Tests.Ring;
using Chord.Grains.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>
/// Ring failures reach the caller as <see cref="ChordGrainStorageException"/> naming the key, and a write the ring did
/// not acknowledge is never reported as done. A py2p node (the reference's behaviour, <see cref="LegacyPy2pPeer"/>)
/// owning 3 of a state's 5 positions provokes them: it cannot acknowledge a write, and a silent one answers no read.
/// </summary>
public sealed class StorageFailureTests
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);

    private static async Task<(ChordTestCluster Chord, LegacyPy2pPeer Py2p)> StartAsync(bool py2pAnswersReads)
    {
        var chord = await ChordTestCluster.StartAsync(3, ChordStorageMode.Tombstone, RequestTimeout, allowUnauthenticatedPeers: true); // py2p interop opt-in
        var ids = chord.Nodes.Select(n => n.Node.Id).ToList();
        var py2p = await LegacyPy2pPeer.StartOwningAsync(ids, 0.3, storing: true, answerRetrieves: py2pAnswersReads);
        foreach (var node in chord.Nodes)
        {
            await py2p.ConnectAsync(node.Node);
        }

        await Eventually.UntilAsync(
            () => chord.Nodes.All(n => n.Node.Members.Any(m => m.Id == py2p.Id && m.IsStoring)),
            TimeSpan.FromSeconds(30),
            "every silo's node knows the py2p node as storing");
        return (chord, py2p);
    }

    /// <summary>A grain id whose state's ring key has at least 3 of its 5 positions on the py2p node.</summary>
    private static GrainId IdMostlyOn(ChordTestCluster chord, LegacyPy2pPeer py2p, ChordGrainStorage storage)
    {
        var ids = chord.Nodes.Select(n => n.Node.Id).Append(py2p.Id).ToList();
        return Enumerable.Range(0, 20_000)
            .Select(i => GrainId.Create("failing", $"k-{i}"))
            .First(id => RingTestData.PositionsOwnedBy(ids, storage.RingKeyOf(id, "state"), py2p.Id) >= 3);
    }

    [Fact]
    public async Task A_write_to_a_key_with_py2p_owners_is_refused_clearly_and_leaves_the_ETag_as_it_was()
    {
        var (chord, py2p) = await StartAsync(py2pAnswersReads: true);
        await using var _ = chord;
        await using var __ = py2p;
        var storage = (ChordGrainStorage)StorageClusterFixture.StorageOf(chord.Cluster.Silos[0]);
        var id = IdMostlyOn(chord, py2p, storage);
        var ringKey = storage.RingKeyOf(id, "state");

        // Called on another silo than the one the id was chosen on: each silo's provider refuses the same way.
        var caller = StorageClusterFixture.StorageOf(chord.Cluster.Silos[1]);
        var state = new GrainState<TestState> { State = new TestState { A = "refused" } };
        var error = await Assert.ThrowsAsync<ChordGrainStorageException>(() => caller.WriteStateAsync("state", id, state));
        Assert.Contains(ringKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("py2p nodes, which keep no versions", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was written", error.Message, StringComparison.Ordinal);
        Assert.Null(state.ETag);
        Assert.False(state.RecordExists);

        // Nothing reached the ring: the py2p node holds none of the key's positions, and a read finds no record.
        Assert.Equal(0, py2p.StoredCount);
        var read = new GrainState<TestState> { State = new TestState() };
        await storage.ReadStateAsync("state", id, read);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
    }

    [Fact]
    public async Task A_read_too_few_positions_answer_throws_ChordGrainStorageException_naming_the_key()
    {
        var (chord, py2p) = await StartAsync(py2pAnswersReads: false);
        await using var _ = chord;
        await using var __ = py2p;
        var storage = (ChordGrainStorage)StorageClusterFixture.StorageOf(chord.Cluster.Silos[1]);
        var id = IdMostlyOn(chord, py2p, storage);

        var read = new GrainState<TestState> { State = new TestState() };
        var error = await Assert.ThrowsAsync<ChordGrainStorageException>(() => storage.ReadStateAsync("state", id, read));
        Assert.Contains(storage.RingKeyOf(id, "state"), error.Message, StringComparison.Ordinal);
        Assert.IsType<Dht.Ring.ChordTimeoutException>(error.InnerException);

        var write = new GrainState<TestState> { State = new TestState { A = "x" } };
        await Assert.ThrowsAsync<ChordGrainStorageException>(() => storage.WriteStateAsync("state", id, write));
        Assert.Null(write.ETag);
    }
}
