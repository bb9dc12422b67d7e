using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;

namespace Chord.Grains.Tests;

/// <summary>Starts an Orleans TestCluster whose silos each run a ring node (AddChord), on loopback with OS-chosen ports.</summary>
public sealed class ChordTestCluster : IAsyncDisposable
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ClusterTrace> Traces = new(StringComparer.Ordinal);

    private ChordTestCluster(TestCluster cluster, ClusterTrace? trace)
    {
        Cluster = cluster;
        Trace = trace;
    }

    public TestCluster Cluster { get; }

    /// <summary>The cluster's trace when <c>CHORD_TEST_TRACE</c> is set (<see cref="ClusterTrace"/>); null otherwise.</summary>
    internal ClusterTrace? Trace { get; }

    /// <summary>The configuration key that names the cluster's <see cref="ClusterTrace"/>, when tracing is on.</summary>
    public const string TraceKey = "ChordTests:Trace";

    public IGrainFactory Grains => Cluster.Client;

    /// <summary>The configuration key that makes each silo add the grain storage "chord": "tombstone" or "delete" (its clear mode).</summary>
    public const string StorageModeKey = "ChordTests:GrainStorage";

    /// <summary>The name the test silos give the Chord grain storage.</summary>
    public const string StorageName = "chord";

    /// <summary>The configuration key that sets each silo's ChordOptions.RequestTimeout (a TimeSpan).</summary>
    public const string RequestTimeoutKey = "ChordTests:RequestTimeout";

    /// <summary>The configuration key that turns on each silo's ChordOptions.AllowUnauthenticatedPeers (the py2p opt-in).</summary>
    public const string AllowUnauthenticatedKey = "ChordTests:AllowUnauthenticatedPeers";

    /// <summary>The configuration key that gives each silo's ring node a <see cref="FreezableTransport"/> over TCP.</summary>
    public const string FreezableTransportKey = "ChordTests:FreezableTransport";

    /// <summary>The configuration key that sets each silo's ChordOptions.TlsCertificatePath (the ring's TLS certificate).</summary>
    public const string TlsCertificatePathKey = "ChordTests:TlsCertificatePath";

    /// <summary>The configuration key that sets each silo's ChordOptions.TlsCertificatePassword.</summary>
    public const string TlsCertificatePasswordKey = "ChordTests:TlsCertificatePassword";

    /// <summary>The configuration key that sets each silo's ChordOptions.ClusterSecret.</summary>
    public const string ClusterSecretKey = "ChordTests:ClusterSecret";

    public static async Task<ChordTestCluster> StartAsync(
        int silos = 3, ChordStorageMode storage = ChordStorageMode.None, TimeSpan? requestTimeout = null, bool allowUnauthenticatedPeers = false, bool freezableTransport = false,
        string? tlsCertificatePath = null, string? tlsCertificatePassword = null, string? clusterSecret = null)
    {
        var builder = new TestClusterBuilder((short)silos);
        foreach (var (key, value) in new[] { (TlsCertificatePathKey, tlsCertificatePath), (TlsCertificatePasswordKey, tlsCertificatePassword), (ClusterSecretKey, clusterSecret) })
        {
            if (value is not null)
            {
                builder.Properties[key] = value;
            }
        }

        if (freezableTransport)
        {
            builder.Properties[FreezableTransportKey] = "true";
        }

        if (allowUnauthenticatedPeers)
        {
            builder.Properties[AllowUnauthenticatedKey] = "true";
        }

        if (storage != ChordStorageMode.None)
        {
            builder.Properties[StorageModeKey] = storage.ToString();
        }

        if (requestTimeout is { } timeout)
        {
            builder.Properties[RequestTimeoutKey] = timeout.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        }

        ClusterTrace? trace = null;
        if (ClusterTrace.Folder is not null)
        {
            var name = Guid.NewGuid().ToString("N");
            Traces[name] = trace = new ClusterTrace(name);
            builder.Properties[TraceKey] = name;
        }

        builder.AddSiloBuilderConfigurator<ChordSilo>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var chord = new ChordTestCluster(cluster, trace);
        await chord.WaitUntilOneRingAsync();
        return chord;
    }

    /// <summary>The ring node of an in-process silo.</summary>
    public static ChordSiloNode NodeOf(SiloHandle silo) =>
        ((InProcessSiloHandle)silo).SiloHost.Services.GetRequiredService<ChordSiloNode>();

    /// <summary>The transport of an in-process silo's ring node, when the cluster was started with <c>freezableTransport</c>.</summary>
    public static FreezableTransport TransportOf(SiloHandle silo) =>
        ((InProcessSiloHandle)silo).SiloHost.Services.GetService<IMeshTransport>() as FreezableTransport
        ?? throw new InvalidOperationException("The cluster was not started with freezableTransport: true.");

    public IReadOnlyList<ChordSiloNode> Nodes => [.. Cluster.Silos.Select(NodeOf)];

    /// <summary>Kills a silo (no shutdown, no unjoin) and waits until every remaining silo's node has removed its node.</summary>
    public async Task KillSiloAsync(SiloHandle victim)
    {
        var victimId = NodeOf(victim).Node.Id;
        await Cluster.KillSiloAsync(victim);
        await Eventually.UntilAsync(
            () => Nodes.All(n => n.Node.Members.All(m => m.Id != victimId)),
            TimeSpan.FromSeconds(60),
            "every remaining silo's node removed the killed silo's node");
    }

    /// <summary>Waits until every silo's node is storing and knows every other silo's node as a storing member.</summary>
    public Task WaitUntilOneRingAsync() => Eventually.UntilAsync(
        () => IsOneRing(out _),
        TimeSpan.FromSeconds(60),
        "every silo's ring node is storing and knows the others");

    public bool IsOneRing(out string divergence)
    {
        var nodes = Nodes.Where(n => n.IsStarted).Select(n => n.Node).ToList();
        var ids = nodes.Select(n => n.Id).ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var node in nodes)
        {
            if (node.IsLeeching)
            {
                problems.Add($"{node.Id[..8]} is not storing");
            }
            else if (!node.IsServing)
            {
                problems.Add($"{node.Id[..8]} is storing but does not serve its positions yet (its fence is unanswered)");
            }

            var known = node.Members.Where(m => m.IsStoring).Select(m => m.Id).Append(node.Id).ToHashSet(StringComparer.Ordinal);
            if (!known.SetEquals(ids))
            {
                problems.Add($"{node.Id[..8]} knows [{string.Join(", ", known.Select(k => k[..8]))}]");
            }
        }

        divergence = string.Join("; ", problems);
        return nodes.Count == Cluster.Silos.Count && problems.Count == 0;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
        finally
        {
            if (Trace is not null)
            {
                Traces.TryRemove(KeyValuePair.Create(Trace.Name, Trace));
                Trace.Write("cluster");
            }
        }
    }

    private sealed class ChordSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.AddChord(options =>
            {
                options.ListenHost = "127.0.0.1";
                options.JoinTimeout = TimeSpan.FromSeconds(10);
                options.AllowUnauthenticatedPeers = siloBuilder.Configuration[AllowUnauthenticatedKey] == "true";
                options.TlsCertificatePath = siloBuilder.Configuration[TlsCertificatePathKey] ?? options.TlsCertificatePath;
                options.TlsCertificatePassword = siloBuilder.Configuration[TlsCertificatePasswordKey] ?? options.TlsCertificatePassword;
                options.ClusterSecret = siloBuilder.Configuration[ClusterSecretKey] ?? options.ClusterSecret;
                if (TimeSpan.TryParse(siloBuilder.Configuration[RequestTimeoutKey], System.Globalization.CultureInfo.InvariantCulture, out var timeout))
                {
                    options.RequestTimeout = timeout;
                }
            });
            if (siloBuilder.Configuration[TraceKey] is { } traceName && Traces.TryGetValue(traceName, out var trace))
            {
                siloBuilder.Services.AddLogging(logging => logging
                    .SetMinimumLevel(LogLevel.Trace)
                    .AddProvider(trace)
                    .AddFilter((provider, category, level) => provider == typeof(ClusterTrace).FullName
                        ? level >= LogLevel.Information || (category?.StartsWith("Chord", StringComparison.Ordinal) ?? false)
                        : level >= LogLevel.Warning));
            }

            if (siloBuilder.Configuration[FreezableTransportKey] == "true")
            {
                siloBuilder.Services.AddSingleton<IMeshTransport>(new FreezableTransport(TcpTransport.Instance));
            }

            if (Enum.TryParse<ChordStorageMode>(siloBuilder.Configuration[StorageModeKey], out var mode) && mode != ChordStorageMode.None)
            {
                siloBuilder.AddChordGrainStorage(StorageName, options => options.DeleteStateOnClear = mode == ChordStorageMode.Delete);
            }
        }
    }
}

/// <summary>Whether the test silos add the Chord grain storage, and what its clear does.</summary>
public enum ChordStorageMode
{
    /// <summary>No grain storage.</summary>
    None,

    /// <summary>The grain storage "chord" with DeleteStateOnClear = false: a clear writes a cleared record.</summary>
    Tombstone,

    /// <summary>The grain storage "chord" with DeleteStateOnClear = true: a clear deletes the ring key.</summary>
    Delete,
}

/// <summary>A 3-silo cluster shared by the tests of one class that do not stop silos.</summary>
public sealed class SharedChordCluster : IAsyncLifetime
{
    private ChordTestCluster? _cluster;

    public ChordTestCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster is not started.");

    public async Task InitializeAsync() => _cluster = await ChordTestCluster.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>Reads a key straight from a ring node (no grain).</summary>
internal static class RingReads
{
    public static async Task<string?> ReadStringAsync(RingNode node, string key)
    {
        var read = await node.GetVersionedAsync(key);
        return read.Value.IsNil ? null : read.Value.AsString();
    }
}
