using Chord.Dht.Tests.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace Chord.Grains.Tests;

/// <summary>
/// A py2p node (the scripted stand-in that speaks only py2p 0.7) given to the silos as a seed joins the ring the
/// silos form: it owns positions of keys written through grains, and what it writes in py2p's forms is read through
/// grains.
/// </summary>
public sealed class Py2pSeedTests
{
    private const string SeedSetting = "ChordTest:Seed";

    [Fact]
    public async Task A_py2p_seed_joins_the_silos_ring_holds_its_positions_and_its_writes_read_through_grains()
    {
        await using var py2p = await LegacyPy2pPeer.StartAsync(storing: true);
        var builder = new TestClusterBuilder(3);
        builder.ConfigureHostConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?> { [SeedSetting] = py2p.Mesh.Address.ToString() }));
        builder.AddSiloBuilderConfigurator<SeededSilo>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        try
        {
            var nodes = cluster.Silos.Select(ChordTestCluster.NodeOf).ToList();

            // Each silo dials the seed, so the py2p node learns every silo node from a direct connection (the only way it learns peers).
            await Eventually.UntilAsync(
                () => nodes.All(n => n.IsStarted && n.Node.IsServing && n.Node.StoringPeers.Any(m => m.Id == py2p.Id)) && py2p.StoringPeerIds.Count == 3,
                TimeSpan.FromSeconds(60),
                "the silo nodes and the py2p seed to know each other as storing");

            // Keys of which the py2p node owns one or two positions are written (its positions get the values in
            // py2p's store form).
            var ids = nodes.Select(n => n.Node.Id).Append(py2p.Id).ToList();
            var candidates = Enumerable.Range(0, 100_000).Select(i => $"seeded-{i}").ToList();
            var keys = candidates.Where(k => RingTestData.PositionsOwnedBy(ids, k, py2p.Id) is 1 or 2).Take(30).ToList();
            foreach (var (key, i) in keys.Select((k, i) => (k, i)))
            {
                await cluster.Client.GetGrain<IChordKeyGrain>(key).Set($"value-{i}");
            }

            await Eventually.UntilAsync(() => py2p.StoredCount >= keys.Count, TimeSpan.FromSeconds(30), "the py2p seed to hold the positions it owns");
            foreach (var (key, i) in keys.Select((k, i) => (k, i)))
            {
                Assert.Equal($"value-{i}", (await cluster.Client.GetGrain<IChordKeyGrain>(key).Get())?.AsString());
            }

            // Three positions on a py2p node, two on silo nodes: the py2p node confirms each store by answering the
            // retrieve sent after it on the same connection, so the write is acknowledged. The seed's share of the ring is random (it may be too small for any key to
            // have three positions on it), so a second stand-in that owns a large arc dials every silo.
            await using var heavy = await LegacyPy2pPeer.StartOwningAsync(ids, 0.3, storing: true);
            foreach (var node in nodes)
            {
                await heavy.ConnectAsync(node.Node);
            }

            // Known as storing and connected directly: a py2p owner's store is confirmed only by the node that reaches
            // it itself (store, then a retrieve on the same connection); a relay of ours cannot confirm it.
            await Eventually.UntilAsync(
                () => nodes.All(n => n.Node.StoringPeers.Any(m => m.Id == heavy.Id) && n.Node.Mesh.GetPeer(heavy.Id) is not null),
                TimeSpan.FromSeconds(30),
                "the silo nodes to know the second py2p node as storing, each over its own connection");
            var withHeavy = ids.Append(heavy.Id).ToList();
            var mostlyPy2p = candidates.First(k => RingTestData.PositionsOwnedBy(withHeavy, k, heavy.Id) == 3 && RingTestData.PositionsOwnedBy(withHeavy, k, py2p.Id) == 0);
            await cluster.Client.GetGrain<IChordKeyGrain>(mostlyPy2p).Set("confirmed by py2p");
            Assert.Equal("confirmed by py2p", (await cluster.Client.GetGrain<IChordKeyGrain>(mostlyPy2p).Get())?.AsString());

            // A py2p write (fire-and-forget, unversioned) is read through a grain once it has landed.
            await py2p.SetAsync("written-by-py2p", MsgValue.Str("hello from python"));
            await Eventually.UntilAsync(
                async () => (await cluster.Client.GetGrain<IChordKeyGrain>("written-by-py2p").Get())?.AsString() == "hello from python",
                TimeSpan.FromSeconds(30),
                "the py2p write to read through a grain");
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }

    private sealed class SeededSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var seed = siloBuilder.Configuration[SeedSetting] ?? throw new InvalidOperationException($"{SeedSetting} is not set.");
            siloBuilder.AddChord(options =>
            {
                options.ListenHost = "127.0.0.1";
                options.JoinTimeout = TimeSpan.FromSeconds(10);
                options.Seeds = [seed];
                options.AllowUnauthenticatedPeers = true; // the py2p interop opt-in
            });
        }
    }
}
