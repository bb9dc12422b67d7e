using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Chord.Silo.Tests;

/// <summary>
/// Chord silo hosts started in-process, as the program starts them: free silo and gateway ports from the OS, HTTP
/// and ring on port 0, a cluster id of their own so no other silo on the machine joins them.
/// </summary>
public sealed class SiloHosts : IAsyncDisposable
{
    private readonly List<ChordHost> _hosts = [];

    private SiloHosts(string clusterId) => ClusterId = clusterId;

    public string ClusterId { get; }

    public IReadOnlyList<ChordHost> Hosts => _hosts;

    public ChordHost this[int index] => _hosts[index];

    /// <summary>
    /// Starts <paramref name="count"/> hosts; with localhost clustering the first is the primary and the others
    /// point at it with --primary. Waits until their ring nodes form one ring.
    /// </summary>
    public static async Task<SiloHosts> StartAsync(int count, params string[] extraArgs)
    {
        var hosts = new SiloHosts($"test-{Guid.NewGuid():N}");
        try
        {
            var redis = extraArgs.Contains("redis");
            var first = await hosts.StartOneAsync(null, extraArgs);
            var primary = redis ? null : $"127.0.0.1:{first.Options.SiloPort}";
            await Task.WhenAll(Enumerable.Range(1, count - 1).Select(_ => hosts.StartOneAsync(primary, extraArgs)));
            await Eventually.UntilAsync(() => hosts.IsOneRing(out _), TimeSpan.FromSeconds(60), "every host's ring node is storing and knows the others");
            return hosts;
        }
        catch
        {
            await hosts.DisposeAsync();
            throw;
        }
    }

    /// <summary>The arguments a host of this set is started with.</summary>
    public string[] Args(string? primary, params string[] extraArgs)
    {
        List<string> args =
        [
            "--silo-port", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--gateway-port", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--http-port", "0",
            "--ring-port", "0",
            "--cluster-id", ClusterId,
            "--Chord:JoinTimeout=00:00:10",
        ];
        if (primary is not null)
        {
            args.AddRange(["--primary", primary]);
        }

        args.AddRange(extraArgs);
        return [.. args];
    }

    private async Task<ChordHost> StartOneAsync(string? primary, string[] extraArgs)
    {
        var host = ChordHost.Create(Args(primary, extraArgs), QuietLogging);
        lock (_hosts)
        {
            _hosts.Add(host);
        }

        await host.StartAsync();
        return host;
    }

    /// <summary>Only warnings and errors from the hosts, through the debug logger (not the test output).</summary>
    public static void QuietLogging(WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
    }

    public bool IsOneRing(out string divergence)
    {
        var nodes = _hosts.Select(h => h.RingNode).Where(n => n.IsStarted).Select(n => n.Node).ToList();
        var ids = nodes.Select(n => n.Id).ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var node in nodes)
        {
            var known = node.Members.Where(m => m.IsStoring).Select(m => m.Id).Append(node.Id).ToHashSet(StringComparer.Ordinal);
            if (node.IsLeeching || !known.SetEquals(ids))
            {
                problems.Add($"{node.Id[..8]} (storing: {!node.IsLeeching}) knows [{string.Join(", ", known.Select(k => k[..8]))}]");
            }
        }

        divergence = string.Join("; ", problems);
        return nodes.Count == _hosts.Count && problems.Count == 0;
    }

    /// <summary>An HTTP client of one host's API.</summary>
    public HttpClient Client(int index) => new() { BaseAddress = _hosts[index].HttpAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A TCP port the OS says is free now (Orleans' silo and gateway ports cannot be 0).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        // Stop the later hosts first, the primary last: the others need it to leave the cluster cleanly.
        foreach (var host in Enumerable.Reverse(_hosts))
        {
            try
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await host.StopAsync(deadline.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                // A host that never started, or did not stop in time: dispose it anyway.
            }

            await host.DisposeAsync();
        }
    }
}

/// <summary>Three hosts forming one cluster and one ring, shared by the tests of the "hosts" collection.</summary>
public sealed class HostsFixture : IAsyncLifetime
{
    private SiloHosts? _hosts;

    public SiloHosts Hosts => _hosts ?? throw new InvalidOperationException("The hosts are not started.");

    public async Task InitializeAsync() => _hosts = await SiloHosts.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (_hosts is not null)
        {
            await _hosts.DisposeAsync();
        }
    }
}

[CollectionDefinition("hosts")]
public sealed class HostsCollection : ICollectionFixture<HostsFixture>;
