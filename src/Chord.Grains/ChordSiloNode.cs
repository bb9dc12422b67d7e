using System.Collections.Concurrent;
using System.Net;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Chord.Grains;

/// <summary>
/// The ring node this silo runs, from before the silo serves grain calls until after it stopped serving them.
/// </summary>
/// <remarks>
/// <para><b>Start.</b> At <see cref="ServiceLifecycleStage.RuntimeGrainServices"/> the node binds its port. At
/// <see cref="ServiceLifecycleStage.ApplicationServices"/>, while the silo is still joining the cluster, it connects
/// to the ring nodes of the silos that are already active (each publishes its endpoint through
/// <see cref="IChordSiloService"/>) and to the configured seeds, learns the directory, and joins as storing, so the
/// nodes already there hand it the entries it now owns. From <see cref="ServiceLifecycleStage.Active"/> on, it
/// follows cluster membership: a silo that becomes active is connected, and a silo declared dead is removed from the
/// ring (its positions are repaired from the copies at the other positions).</para>
/// <para><b>Transport.</b> TCP on <see cref="ChordOptions.RingPort"/> (TLS when a certificate is configured), unless
/// the silo's services hold an <see cref="IMeshTransport"/>: then the node listens and dials through that one (tests
/// use it to inject faults on the wire; the frames are the same).</para>
/// <para><b>Stop.</b> Membership following stops first; then the node unjoins, handing its entries to the members
/// that own them next; then it closes.</para>
/// </remarks>
public sealed partial class ChordSiloNode : ILifecycleParticipant<ISiloLifecycle>, IAsyncDisposable
{
    private readonly ChordOptions _options;
    private readonly ILocalSiloDetails _silo;
    private readonly IClusterMembershipService _membership;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<SiloAddress, string> _siloNodes = new();
    private readonly ConcurrentDictionary<string, string> _seedNodes = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private RingNode? _node;
    private Task? _following;

    /// <summary>Created by dependency injection; <c>AddChord</c> registers it.</summary>
    public ChordSiloNode(
        IOptions<ChordOptions> options, ILocalSiloDetails silo, IClusterMembershipService membership, IServiceProvider services, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _silo = silo;
        _membership = membership;
        _services = services;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<ChordSiloNode>();
    }

    /// <summary>This silo's ring node; throws until the silo has started it.</summary>
    public RingNode Node => _node ?? throw new InvalidOperationException("The ring node of this silo is not started: it starts with the silo (AddChord) before grain calls are served.");

    /// <summary>True once the node is started.</summary>
    public bool IsStarted => _node is not null;

    /// <summary>The ring node ids of the other silos, as far as this silo has learnt them.</summary>
    public IReadOnlyDictionary<SiloAddress, string> SiloNodes => _siloNodes;

    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe(nameof(ChordSiloNode), ServiceLifecycleStage.RuntimeGrainServices, StartNodeAsync, StopNodeAsync);
        lifecycle.Subscribe(nameof(ChordSiloNode), ServiceLifecycleStage.ApplicationServices, JoinRingAsync, LeaveRingAsync);
        lifecycle.Subscribe(nameof(ChordSiloNode), ServiceLifecycleStage.Active, StartFollowingAsync, StopFollowingAsync);
    }

    internal ChordSiloNodeInfo DescribeSelf()
    {
        var node = Node;
        return new ChordSiloNodeInfo(node.Id, node.Mesh.Address.ToString(), _silo.SiloAddress.ToParsableString(), !node.IsLeeching, node.StoredCount, OwnedCount(node));
    }

    /// <summary>
    /// The live entries at positions this node owns: a position's owner is the storing member nearest at or before
    /// it, so this node owns the arc from its own position up to the next storing member's. Placement copies (kept
    /// here for a successor that owns 3 or more of a key's positions) lie outside it.
    /// </summary>
    private static int OwnedCount(RingNode node)
    {
        if (node.IsLeeching)
        {
            return 0;
        }

        var self = node.Self.Position;
        var positions = node.Members.Where(m => m.IsStoring).Select(m => m.Position).Append(self).OrderBy(p => p).ToList();
        var index = positions.IndexOf(self);
        var successor = positions[(index + 1) % positions.Count];
        return node.DumpData(self, successor).Values.Sum(byPosition => byPosition.Count);
    }

    private async Task StartNodeAsync(CancellationToken cancellationToken)
    {
        var advertised = _silo.SiloAddress.Endpoint.Address;
        var listenHost = _options.ListenHost ?? advertised.ToString();
        PeerAddress? outward = _options.OutwardAddress is { } text ? PeerAddress.Parse(text) : null;
        if (outward is null && IPAddress.TryParse(listenHost, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)))
        {
            outward = new PeerAddress(advertised.ToString(), 0); // port 0: the bound port
        }

        var ringOptions = ChordOptionsValidator.ToRingOptions(_options, listenHost, outward);
        var transport = _services.GetService<IMeshTransport>();
        if (transport is not null && _options.TlsCertificatePath is { } certificate)
        {
            Log.TransportReplacesTls(_logger, transport.GetType().Name, certificate);
        }

        var node = new RingNode(ringOptions, _loggerFactory, transport);
        await node.StartAsync(cancellationToken);
        _node = node;
        Log.Started(_logger, node.Id, node.Mesh.Address.ToString(), _silo.SiloAddress.ToString());
    }

    private async Task JoinRingAsync(CancellationToken cancellationToken)
    {
        var node = Node;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        deadline.CancelAfter(_options.JoinTimeout);
        try
        {
            var reached = await ConnectToRingAsync(_membership.CurrentSnapshot, deadline.Token);
            if (reached.Count > 0)
            {
                // Learn the directory from the nodes reached before taking a share, so the handoff goes to the right owners.
                while (!deadline.IsCancellationRequested && reached.Any(id => node.Members.All(m => m.Id != id)))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(20), deadline.Token);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Log.JoinTimedOut(_logger, _options.JoinTimeout.TotalSeconds);
        }

        await node.JoinAsync();
        Log.Joined(_logger, node.Id, node.Members.Count);
    }

    private async Task LeaveRingAsync(CancellationToken cancellationToken)
    {
        if (_node is { IsLeeching: false } node)
        {
            if (node.Members.All(m => !m.IsStoring))
            {
                // The last storing member has nobody to hand its entries to: say so plainly rather than fail the unjoin.
                Log.LeftLast(_logger, node.Id, node.StoredCount, _options.DataDirectory is null ? "they are lost with this silo (no DataDirectory)" : $"they stay in {_options.DataDirectory}");
                return;
            }

            try
            {
                await node.UnjoinAsync(cancellationToken);
                Log.Left(_logger, node.Id);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || cancellationToken.IsCancellationRequested)
            {
                Log.LeaveFailed(_logger, ex, node.Id);
            }
        }
    }

    private Task StartFollowingAsync(CancellationToken cancellationToken)
    {
        _following = Task.Run(() => FollowMembershipAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task StopFollowingAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_following is { } following)
        {
            await following.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task StopNodeAsync(CancellationToken cancellationToken) => await DisposeAsync();

    /// <summary>Follows membership until the silo stops: connects silos that become active, removes silos declared dead.</summary>
    private async Task FollowMembershipAsync(CancellationToken cancellationToken)
    {
        // Membership updates come when something changes; a periodic pass also retries silos and seeds that failed.
        var updates = _membership.MembershipUpdates.GetAsyncEnumerator(cancellationToken);
        var next = updates.MoveNextAsync().AsTask();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var snapshot = _membership.CurrentSnapshot;
                try
                {
                    await ConnectToRingAsync(snapshot, cancellationToken);
                    await ForgetDeadSilosAsync(snapshot);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.FollowFailed(_logger, ex);
                }

                var tick = Task.Delay(TimeSpan.FromSeconds(5), cancellationToken);
                if (await Task.WhenAny(next, tick) == next)
                {
                    if (!await next)
                    {
                        return;
                    }

                    next = updates.MoveNextAsync().AsTask();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            await updates.DisposeAsync().AsTask().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Connects to the ring nodes of active silos and to the seeds not connected yet; returns the node ids reached.</summary>
    private async Task<List<string>> ConnectToRingAsync(ClusterMembershipSnapshot snapshot, CancellationToken cancellationToken)
    {
        var node = Node;
        var client = _services.GetRequiredService<IChordSiloServiceClient>();
        var silos = snapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(_silo.SiloAddress))
            .Select(m => m.SiloAddress);
        var tasks = new List<Task<string?>>();
        foreach (var silo in silos)
        {
            if (_siloNodes.TryGetValue(silo, out var known) && node.Mesh.GetPeer(known) is not null)
            {
                continue;
            }

            tasks.Add(ConnectToSiloAsync(client, silo, cancellationToken));
        }

        foreach (var seed in _options.Seeds)
        {
            if (_seedNodes.TryGetValue(seed, out var known) && node.Mesh.GetPeer(known) is not null)
            {
                continue;
            }

            tasks.Add(ConnectToSeedAsync(seed, cancellationToken));
        }

        var ids = await Task.WhenAll(tasks);
        return [.. ids.OfType<string>()];
    }

    private async Task<string?> ConnectToSiloAsync(IChordSiloServiceClient client, SiloAddress silo, CancellationToken cancellationToken)
    {
        try
        {
            var info = await client.On(silo).GetNodeInfo().WaitAsync(_options.RequestTimeout, cancellationToken);
            _siloNodes[silo] = info.NodeId;
            if (Node.Mesh.GetPeer(info.NodeId) is null)
            {
                await Node.ConnectAsync(PeerAddress.Parse(info.Address), cancellationToken);
                Log.ConnectedToSilo(_logger, silo.ToString(), info.NodeId, info.Address);
            }

            return info.NodeId;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.SiloUnreachable(_logger, silo.ToString(), ex.Message.Split('\n', 2)[0].TrimEnd());
            return null;
        }
    }

    private async Task<string?> ConnectToSeedAsync(string seed, CancellationToken cancellationToken)
    {
        try
        {
            var peer = await Node.ConnectAsync(PeerAddress.Parse(seed), cancellationToken);
            var id = peer.Id ?? throw new InvalidOperationException($"The seed {seed} closed the connection during the handshake.");
            _seedNodes[seed] = id;
            Log.ConnectedToSeed(_logger, seed, id);
            return id;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.SeedUnreachable(_logger, seed, ex.Message.Split('\n', 2)[0].TrimEnd());
            return null;
        }
    }

    private async Task ForgetDeadSilosAsync(ClusterMembershipSnapshot snapshot)
    {
        foreach (var member in snapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead))
        {
            if (_siloNodes.TryRemove(member.SiloAddress, out var id) && await Node.ForgetMemberAsync(id, $"Orleans declared its silo {member.SiloAddress} dead"))
            {
                Log.ForgotDeadSilo(_logger, member.SiloAddress.ToString(), id);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (Interlocked.Exchange(ref _node, null) is { } node)
        {
            await node.DisposeAsync();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(13, LogLevel.Warning, "The ring node uses the IMeshTransport registered in the silo's services ({Transport}), not TLS: Chord:TlsCertificatePath ({Certificate}) is ignored, and ring traffic is encrypted only if that transport does it")]
        public static partial void TransportReplacesTls(ILogger logger, string transport, string certificate);

        [LoggerMessage(1, LogLevel.Information, "Ring node {NodeId} listening on {Address} for silo {Silo}")]
        public static partial void Started(ILogger logger, string nodeId, string address, string silo);

        [LoggerMessage(2, LogLevel.Information, "Ring node {NodeId} joined the ring as storing; it knows {Members} other members")]
        public static partial void Joined(ILogger logger, string nodeId, int members);

        [LoggerMessage(3, LogLevel.Warning, "The ring was not reached within {Seconds} s of joining; joining with what was reached, and following membership")]
        public static partial void JoinTimedOut(ILogger logger, double seconds);

        [LoggerMessage(4, LogLevel.Information, "Ring node {NodeId} left the ring and handed its entries off")]
        public static partial void Left(ILogger logger, string nodeId);

        [LoggerMessage(5, LogLevel.Error, "Ring node {NodeId} could not hand all its entries off while leaving; the ring repairs them from the other positions")]
        public static partial void LeaveFailed(ILogger logger, Exception exception, string nodeId);

        [LoggerMessage(6, LogLevel.Information, "Connected to the ring node {NodeId} of silo {Silo} at {Address}")]
        public static partial void ConnectedToSilo(ILogger logger, string silo, string nodeId, string address);

        [LoggerMessage(7, LogLevel.Warning, "The ring node of silo {Silo} could not be reached yet ({Reason}); retrying")]
        public static partial void SiloUnreachable(ILogger logger, string silo, string reason);

        [LoggerMessage(8, LogLevel.Information, "Connected to the ring seed {Seed} (node {NodeId})")]
        public static partial void ConnectedToSeed(ILogger logger, string seed, string nodeId);

        [LoggerMessage(9, LogLevel.Warning, "The ring seed {Seed} could not be reached ({Reason}); retrying")]
        public static partial void SeedUnreachable(ILogger logger, string seed, string reason);

        [LoggerMessage(10, LogLevel.Information, "Silo {Silo} was declared dead: its ring node {NodeId} was removed from the ring")]
        public static partial void ForgotDeadSilo(ILogger logger, string silo, string nodeId);

        [LoggerMessage(11, LogLevel.Error, "Following cluster membership failed; retrying")]
        public static partial void FollowFailed(ILogger logger, Exception exception);

        [LoggerMessage(12, LogLevel.Warning, "Ring node {NodeId} is the last storing member: its {Entries} entries have no other node to go to; {Fate}")]
        public static partial void LeftLast(ILogger logger, string nodeId, int entries, string fate);
    }
}
