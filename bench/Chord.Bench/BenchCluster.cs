using System.Diagnostics;
using Chord.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Chord.Bench;

/// <summary>
/// An Orleans cluster in this process (TestingHost, in-process silos, loopback, OS-chosen ports) whose silos each run
/// a ring node (<c>AddChord</c>) on loopback TCP; the bench calls it through the cluster's client.
/// </summary>
public sealed class BenchCluster : IAsyncDisposable
{
    private BenchCluster(TestCluster cluster) => Cluster = cluster;

    public TestCluster Cluster { get; }

    public IGrainFactory Client => Cluster.Client;

    /// <summary>Starts <paramref name="silos"/> silos configured by <typeparamref name="TConfigurator"/>, with <paramref name="properties"/> in their configuration.</summary>
    public static async Task<BenchCluster> StartAsync<TConfigurator>(int silos, IReadOnlyDictionary<string, string>? properties = null)
        where TConfigurator : ISiloConfigurator, new()
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        foreach (var (key, value) in properties ?? new Dictionary<string, string>())
        {
            builder.Properties[key] = value;
        }

        var cluster = builder.Build();
        await cluster.DeployAsync();
        var bench = new BenchCluster(cluster);
        try
        {
            await bench.WaitUntilOneRingAsync(TimeSpan.FromSeconds(120));
            return bench;
        }
        catch
        {
            await bench.DisposeAsync();
            throw;
        }
    }

    public IReadOnlyList<ChordSiloNode> Nodes =>
        [.. Cluster.Silos.Select(s => ((InProcessSiloHandle)s).SiloHost.Services.GetRequiredService<ChordSiloNode>())];

    private async Task WaitUntilOneRingAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!IsOneRing())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"The silos' ring nodes did not form one ring within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(100);
        }
    }

    private bool IsOneRing()
    {
        var nodes = Nodes;
        if (nodes.Any(n => !n.IsStarted))
        {
            return false;
        }

        var ids = nodes.Select(n => n.Node.Id).ToHashSet(StringComparer.Ordinal);
        return nodes.All(n => !n.Node.IsLeeching && ids.All(id => id == n.Node.Id || n.Node.Members.Any(m => m.Id == id && m.IsStoring)));
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}
