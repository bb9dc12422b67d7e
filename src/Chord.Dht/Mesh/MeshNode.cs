using System.Collections.Concurrent;
using System.Threading.Channels;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Chord.Dht.Mesh;

/// <summary>
/// A node of the py2p 0.7 mesh (py2p's <c>MeshSocket</c>): it listens, connects, exchanges handshakes and peers
/// lists, floods broadcasts, delivers whispers and hands application messages to handlers and a receive queue.
/// </summary>
/// <remarks>
/// <para>Start it with <see cref="StartAsync"/>; its <see cref="Id"/> exists from then on, because py2p derives the id
/// from the advertised address, which includes the port the OS chose.</para>
/// <para>Received messages go, in order: to the mesh's own handling (handshake, peers, request, response,
/// renegotiate); then to the handlers of <see cref="RegisterHandler"/>, in the order registered, until one claims
/// it; then, if it is an application message (sub-flag whisper or broadcast), to <see cref="ReceiveAsync"/> and the
/// <see cref="MessageReceived"/> event. Anything else is ignored, as py2p ignores unknown sub-flags.</para>
/// </remarks>
public sealed partial class MeshNode : IAsyncDisposable
{
    private readonly IMeshTransport _transport;
    private readonly ConcurrentDictionary<string, MeshPeer> _routing = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<MeshPeer, long> _awaiting = new();
    private readonly ConcurrentDictionary<string, byte> _dialing = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<MessageId, long> _seenBroadcasts = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<PeerAddress>> _pendingRequests = new(StringComparer.Ordinal);
    private readonly Channel<MeshMessage> _received;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _routingLock = new();
    private volatile MeshMessageHandler[] _handlers = [];
    private IMeshListener? _listener;
    private ITimer? _maintenance;
    private Task _acceptLoop = Task.CompletedTask;
    private string? _id;
    private long _framesIn;
    private long _framesOut;
    private long _bytesIn;
    private long _bytesOut;
    private long _badFrames;
    private long _exceptions;
    private long _refusedConnections;
    private long _refusedPeers;
    private long _preAuthLimitCloses;
    private long _preAuthPeakBytes;
    private int _open;
    private readonly ConcurrentDictionary<string, int> _incomingPerHost = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _limitLogged = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (int Failures, long NotBefore)> _dialBackoff = new(StringComparer.Ordinal);
    private readonly byte[] _secret;
    private int _disposed;

    /// <summary>Creates a node; nothing is opened until <see cref="StartAsync"/>.</summary>
    /// <param name="options">Settings; validated here, so a bad value fails at once with its name.</param>
    /// <param name="loggerFactory">Where logs go; none by default.</param>
    /// <param name="transport">The transport; TCP by default.</param>
    public MeshNode(MeshOptions options, ILoggerFactory? loggerFactory = null, IMeshTransport? transport = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MeshNode>();
        _transport = transport
            ?? (options.TlsCertificatePath is { } certificate
                ? new TlsTcpTransport(TlsTcpTransport.LoadCertificate(certificate, options.TlsCertificatePassword), options.HandshakeTimeout)
                : TcpTransport.Instance);
        ProtocolId = NodeIdentity.ProtocolId(options.Subnet);
        Salt = options.Salt ?? NodeIdentity.NewSalt();
        _secret = System.Text.Encoding.UTF8.GetBytes(options.ClusterSecret ?? MeshOptions.DevelopmentClusterSecret);
        _received = Channel.CreateBounded<MeshMessage>(new BoundedChannelOptions(options.ReceiveQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
        });
    }

    /// <summary>The settings.</summary>
    public MeshOptions Options { get; }

    /// <summary>
    /// How long a handshake may take: <see cref="MeshOptions.HandshakeTimeout"/>, except on the in-memory transport,
    /// where a handshake frame cannot be lost and only a loaded machine makes it late, so it is not bounded (a test
    /// ring of hundreds of nodes must not fail on the wall clock).
    /// </summary>
    private TimeSpan HandshakeWait => _transport.IsInProcess ? Timeout.InfiniteTimeSpan : Options.HandshakeTimeout;

    /// <summary>
    /// The bound on waits that must end even in memory (the other of two simultaneous connections being admitted, a
    /// dropped duplicate flushing its queue): the handshake timeout on TCP; on the in-memory transport, where the
    /// timeout may be set below what any handshake takes (a loaded machine is no lost frame), a minute or the
    /// handshake timeout, whichever is longer.
    /// </summary>
    internal TimeSpan HandshakeBound => _transport.IsInProcess
        ? (Options.HandshakeTimeout > InMemoryHandshakeBound ? Options.HandshakeTimeout : InMemoryHandshakeBound)
        : Options.HandshakeTimeout;

    private static readonly TimeSpan InMemoryHandshakeBound = TimeSpan.FromMinutes(1);

    internal ILogger Logger { get; }

    /// <summary>The protocol id of our subnet; peers with another one are refused.</summary>
    public string ProtocolId { get; }

    /// <summary>The salt of our id.</summary>
    public string Salt { get; }

    /// <summary>Our node id (base58). Available once <see cref="StartAsync"/> has bound the listener.</summary>
    public string Id => _id ?? throw new InvalidOperationException("The node id exists once StartAsync has bound the listener.");

    /// <summary>The address we advertise: <see cref="MeshOptions.OutwardAddress"/>, or the bound one.</summary>
    public PeerAddress Address { get; private set; }

    /// <summary>The connections in the routing table (handshake done), keyed by node id.</summary>
    public IReadOnlyCollection<MeshPeer> Peers => [.. _routing.Values];

    /// <summary>
    /// The routing table's connections, enumerated without a snapshot: ConcurrentDictionary's enumerator takes no
    /// lock and copies nothing, where <see cref="Peers"/> (its <c>Values</c>) takes every bucket lock and copies.
    /// For the per-request paths; a peer added or removed meanwhile may or may not be seen.
    /// </summary>
    /// <summary>
    /// The routing table's connections as an array made when the table last changed: the ring walks it for every
    /// request's next hop, and enumerating the dictionary itself allocated an enumerator and an iterator each time (4%
    /// of what a get allocated). Entries may have closed since; callers check <see cref="MeshPeer.IsClosed"/>.
    /// </summary>
    internal MeshPeer[] RoutingSnapshot => Volatile.Read(ref _routingSnapshot);

    private MeshPeer[] _routingSnapshot = [];

    /// <summary>Makes <see cref="RoutingSnapshot"/> anew after a change of the routing table; under <see cref="_routingLock"/>.</summary>
    private void RefreshRoutingSnapshot() => Volatile.Write(ref _routingSnapshot, [.. _routing.Values]);

    /// <summary>How many routing-table connections we dialled.</summary>
    public int OutgoingCount => _routing.Values.Count(p => p.IsOutgoing);

    /// <summary>Raised when the node goes from no peers to its first peer.</summary>
    public event EventHandler? ConnectedToNetwork;

    /// <summary>Raised when a connection enters the routing table.</summary>
    public event EventHandler<MeshPeerEventArgs>? PeerConnected;

    /// <summary>Raised when a routing-table connection closes.</summary>
    public event EventHandler<MeshPeerEventArgs>? PeerDisconnected;

    /// <summary>Raised for every application message (also queued for <see cref="ReceiveAsync"/>).</summary>
    public event EventHandler<MeshMessageEventArgs>? MessageReceived;

    /// <summary>
    /// Asked when a peers list names a node we are not connected to and we already have
    /// <see cref="MeshOptions.MaxOutgoing"/> outgoing connections: true dials it anyway. The ring uses it to reach
    /// its successor and predecessor.
    /// </summary>
    public Func<string, bool>? ExtraDialPolicy { get; set; }

    /// <summary>The current time in whole Unix seconds, from <see cref="MeshOptions.TimeProvider"/>.</summary>
    public long UnixTime => Options.TimeProvider.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>Binds the listener, fixes the node id and starts accepting connections.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_listener is not null)
        {
            throw new InvalidOperationException("The node is already started.");
        }

        _listener = await _transport.ListenAsync(Options.ListenHost, Options.ListenPort, cancellationToken);
        if (_listener is IMeshRefusingListener refusing)
        {
            refusing.Refused = OnListenerRefused;
        }
        // An outward address with port 0 names only the host: the port is the bound one.
        Address = Options.OutwardAddress is { } outward ? (outward.Port == 0 ? outward with { Port = _listener.BoundAddress.Port } : outward) : _listener.BoundAddress;
        _id = NodeIdentity.NodeId(Address.Host, Address.Port, ProtocolId, Salt);
        _maintenance = Options.TimeProvider.CreateTimer(_ => RunMaintenance(), null, Options.MaintenanceInterval, Options.MaintenanceInterval);
        _acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        MeshLog.Listening(Logger, _id, _listener.BoundAddress);
        if (Options.Security != MeshSecurity.Off && Options.ClusterSecret is null)
        {
            MeshLog.DevelopmentSecret(Logger, _id);
        }

        if (Options.Security != MeshSecurity.Required)
        {
            MeshLog.Unauthenticated(Logger, _id, Options.Security);
        }
    }

    /// <summary>The routing-table connection to <paramref name="nodeId"/>, or null.</summary>
    public MeshPeer? GetPeer(string nodeId) => _routing.TryGetValue(nodeId, out var peer) && !peer.IsClosed ? peer : null;

    /// <summary>Connects to <c>host:port</c> and waits for the handshake.</summary>
    public Task<MeshPeer> ConnectAsync(string host, int port, string? expectedId = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(new PeerAddress(host, port), expectedId, cancellationToken);

    /// <summary>
    /// Connects to <paramref name="address"/> and waits for the peer's handshake. Returns the existing connection
    /// when <paramref name="expectedId"/> is already connected. Throws <see cref="MeshConnectException"/> when the
    /// address refuses, the handshake does not come within <see cref="MeshOptions.HandshakeTimeout"/>, the peer is
    /// on another subnet, or its id is not <paramref name="expectedId"/>.
    /// </summary>
    public Task<MeshPeer> ConnectAsync(PeerAddress address, string? expectedId = null, CancellationToken cancellationToken = default) =>
        ConnectAsync(address, expectedId, fromPeersList: false, cancellationToken);

    /// <param name="address">Where to dial.</param>
    /// <param name="expectedId">The id the peer must have, or null.</param>
    /// <param name="fromPeersList">
    /// The address came from a peer's peers list, which names whoever was connected to it a moment ago (a client
    /// that has since exited, say): a failure is logged at Debug, not as a warning.
    /// </param>
    /// <param name="cancellationToken">Ends the dial.</param>
    /// <param name="trusted">
    /// The address came from a source that proved the secret (configuration, the ring's directory, an authenticated
    /// peer): our challenge and proof go out on the connection. False for an address an unauthenticated peer named:
    /// the connection is made as py2p makes it (docs/SECURITY.md, relays).
    /// </param>
    internal async Task<MeshPeer> ConnectAsync(PeerAddress address, string? expectedId, bool fromPeersList, CancellationToken cancellationToken, bool trusted = true)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (expectedId == Id)
        {
            throw new ArgumentException($"Node {expectedId} is this node; a node never dials itself.", nameof(expectedId));
        }
        if (expectedId is not null && GetPeer(expectedId) is { } existing)
        {
            return existing;
        }

        // A member whose address refused the connection recently is not dialled again until its backoff has passed (a
        // dead member would otherwise be dialled by every write that wants a copy on it). Only a refused or failed TCP
        // connect counts: a member that answers, however slowly, is alive, and the ring must keep trying it.
        var backoffKey = expectedId is null ? null : address + "/" + expectedId;
        if (backoffKey is not null && _dialBackoff.TryGetValue(backoffKey, out var backoff) && Options.TimeProvider.GetTimestamp() < backoff.NotBefore)
        {
            var wait = Options.TimeProvider.GetElapsedTime(Options.TimeProvider.GetTimestamp(), backoff.NotBefore);
            throw new MeshConnectException($"{address} (node {expectedId}) is not dialled again for {wait.TotalSeconds:0.#} s: its last {backoff.Failures} attempt(s) failed.") { IsBackoff = true };
        }

        if (expectedId is null)
        {
            return await DialAsync(address, expectedId, backoffKey, fromPeersList, trusted, cancellationToken);
        }

        // One dial per node at a time: two dials in flight to one node made two connections in the same direction,
        // and resolving them drops one of them, sometimes the one already carrying requests (their answers lost).
        // A dial made as py2p makes it (untrusted: no challenge) is never shared with one that proves the secret.
        var dialKey = trusted ? expectedId : "untrusted/" + expectedId;
        while (true)
        {
            if (GetPeer(expectedId) is { } connected)
            {
                return connected;
            }

            var mine = new TaskCompletionSource<MeshPeer>(TaskCreationOptions.RunContinuationsAsynchronously);
            var shared = _dialsInFlight.GetOrAdd(dialKey, mine.Task);
            if (shared != mine.Task)
            {
                try
                {
                    return await shared.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    continue; // the dial we waited on was given up by its caller: ours goes on
                }
            }

            try
            {
                var peer = await DialAsync(address, expectedId, backoffKey, fromPeersList, trusted, cancellationToken);
                mine.TrySetResult(peer);
                return peer;
            }
            catch (OperationCanceledException)
            {
                mine.TrySetCanceled();
                throw;
            }
            catch (Exception e)
            {
                mine.TrySetException(e);
                _ = mine.Task.Exception; // observed here: waiters, if any, get it too
                throw;
            }
            finally
            {
                _dialsInFlight.TryRemove(KeyValuePair.Create(dialKey, mine.Task));
            }
        }
    }

    // Dials in flight, by the node id they expect, untrusted ones apart (see ConnectAsync).
    private readonly ConcurrentDictionary<string, Task<MeshPeer>> _dialsInFlight = new(StringComparer.Ordinal);

    private async Task<MeshPeer> DialAsync(PeerAddress address, string? expectedId, string? backoffKey, bool fromPeersList, bool trusted, CancellationToken cancellationToken)
    {
        MeshLog.Dialling(Logger, address, expectedId ?? "(any)");
        MeshTransportConnection connection;
        try
        {
            connection = await _transport.ConnectAsync(address, cancellationToken);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            throw DialFailed(backoffKey, address, expectedId, new MeshConnectException($"Could not connect to {address}: {e.Message}", e), fromPeersList);
        }

        var peer = Attach(connection, isOutgoing: true, expectedId, provesSecret: trusted);
        try
        {
            await peer.Handshake.WaitAsync(HandshakeWait, Options.TimeProvider, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or IOException)
        {
            peer.Close();
            // Of two connections dialled at once, the remote may close ours as the duplicate: the other one serves.
            if (peer.Id is { } id && (expectedId is null || expectedId == id) && await OtherConnectionAsync(peer, id, cancellationToken) is { } survivor)
            {
                return survivor;
            }

            var failure = new MeshConnectException($"{address} did not complete a handshake and authentication: {e.Message}", e);
            if (backoffKey is not null && !fromPeersList && !LogOncePerMinute("handshake/" + backoffKey))
            {
                // A member that accepts connections but does not answer (a frozen process: its kernel still accepts) is
                // dialled again at once (it is alive, however slowly), but warned of once a minute, not per attempt.
                MeshLog.HandshakeFailedAgain(Logger, address, expectedId!, failure.Message);
                MeshLog.DialFailedDetail(Logger, address, failure);
                throw failure;
            }

            throw DialFailed(null, address, expectedId, failure, fromPeersList);
        }

        if (expectedId is not null && peer.Id != expectedId)
        {
            peer.Close();
            throw new MeshConnectException($"{address} answered as node {peer.Id}, not the expected {expectedId}.");
        }

        return GetPeer(peer.Id!) ?? peer;
    }

    /// <summary>
    /// The connection to <paramref name="id"/> that serves when <paramref name="closed"/> did not: the one in the
    /// routing table, or one still authenticating (waited for up to <see cref="MeshOptions.HandshakeTimeout"/>); null
    /// when there is none.
    /// </summary>
    private async Task<MeshPeer?> OtherConnectionAsync(MeshPeer closed, string id, CancellationToken cancellationToken)
    {
        if (GetPeer(id) is { } served)
        {
            return served;
        }

        if (!_awaiting.Keys.Any(p => p != closed && p.Id == id && !p.IsClosed))
        {
            return null;
        }

        var admitted = new TaskCompletionSource<MeshPeer>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnConnected(object? sender, MeshPeerEventArgs e)
        {
            if (e.Peer.Id == id)
            {
                admitted.TrySetResult(e.Peer);
            }
        }

        PeerConnected += OnConnected;
        try
        {
            if (GetPeer(id) is { } now)
            {
                return now;
            }

            return await admitted.Task.WaitAsync(HandshakeBound, Options.TimeProvider, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
        finally
        {
            PeerConnected -= OnConnected;
        }
    }

    private MeshConnectException DialFailed(string? backoffKey, PeerAddress address, string? expectedId, MeshConnectException failure, bool fromPeersList)
    {
        var delay = TimeSpan.Zero;
        var failures = 0;
        if (backoffKey is not null)
        {
            (failures, _) = _dialBackoff.GetValueOrDefault(backoffKey);
            failures++;
            delay = TimeSpan.FromMilliseconds(Math.Min(MaxDialBackoff.TotalMilliseconds, FirstDialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 16))));
            _dialBackoff[backoffKey] = (failures, Options.TimeProvider.GetTimestamp() + (long)(delay.TotalSeconds * Options.TimeProvider.TimestampFrequency));
        }

        if (fromPeersList)
        {
            // A name from someone's peers list (whoever was connected to it a moment ago, a client that has exited):
            // no reason to warn. A member the ring needs is dialled by the ring itself, which warns.
            MeshLog.GossipedPeerUnreachable(Logger, address, expectedId ?? "(any)", failure.Message);
        }
        else if (backoffKey is null)
        {
            MeshLog.AddressUnreachable(Logger, address, expectedId ?? "(any)", failure.Message);
        }
        else if (failures == 1)
        {
            // One warning per dead member: the redials that follow (every few seconds while the ring wants it) are
            // Debug lines, until it answers again (AdmitAsync says so once).
            MeshLog.DialFailedOnce(Logger, address, expectedId ?? "(any)", failure.Message);
        }
        else
        {
            MeshLog.DialFailedAgain(Logger, address, expectedId ?? "(any)", failure.Message, failures, delay.TotalSeconds);
        }

        MeshLog.DialFailedDetail(Logger, address, failure);
        return failure;
    }

    /// <summary>The backoff after a member's first failed dial; it doubles with each further failure.</summary>
    internal static readonly TimeSpan FirstDialBackoff = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest backoff between dials of a member that keeps failing.</summary>
    internal static readonly TimeSpan MaxDialBackoff = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connects to a node known only by id: asks the network for its address (a broadcast request, answered by
    /// a node connected to it) and dials it.
    /// </summary>
    public async Task<MeshPeer> ConnectToIdAsync(string nodeId, CancellationToken cancellationToken = default)
    {
        if (GetPeer(nodeId) is { } peer)
        {
            return peer;
        }

        var address = await FindAddressAsync(nodeId, cancellationToken);
        return await ConnectAsync(address, nodeId, cancellationToken);
    }

    /// <summary>
    /// Finds the address of <paramref name="nodeId"/> by broadcasting <c>[request, req_id, id]</c>; a node connected
    /// to it answers. Throws <see cref="TimeoutException"/> after <see cref="MeshOptions.RequestTimeout"/>.
    /// </summary>
    public async Task<PeerAddress> FindAddressAsync(string nodeId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodeId);
        if (GetPeer(nodeId) is { Address: { } known })
        {
            return known;
        }

        var requestId = Guid.NewGuid().ToString("N");
        var pending = new TaskCompletionSource<PeerAddress>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingRequests[requestId] = pending;
        try
        {
            await BroadcastPayloadAsync((long)SubFlag.Request, requestId, MsgValue.BinAscii(nodeId));
            return await pending.Task.WaitAsync(Options.RequestTimeout, Options.TimeProvider, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No node answered where {nodeId} is within {Options.RequestTimeout.TotalSeconds:0.#} s.");
        }
        finally
        {
            _pendingRequests.TryRemove(requestId, out _);
        }
    }

    /// <summary>Closes the connection to <paramref name="nodeId"/>; returns false when there is none.</summary>
    public async Task<bool> DisconnectAsync(string nodeId)
    {
        if (!_routing.TryGetValue(nodeId, out var peer))
        {
            return false;
        }

        peer.Close();
        await peer.Closed;
        return true;
    }

    /// <summary>Adds a handler at the end of the chain.</summary>
    public void RegisterHandler(MeshMessageHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_routingLock)
        {
            _handlers = [.. _handlers, handler];
        }
    }

    /// <summary>py2p's <c>send</c>: an application message <c>[type, *args]</c> sent with <paramref name="flag"/>.</summary>
    public ValueTask SendAsync(MsgValue[] args, MainFlag flag = MainFlag.Broadcast, SubFlag type = SubFlag.Broadcast)
    {
        ArgumentNullException.ThrowIfNull(args);
        MsgValue[] payload = [(long)type, .. args];
        return flag == MainFlag.Broadcast ? BroadcastPayloadAsync(payload) : SendToAllAsync(CreateMessage(flag, payload));
    }

    /// <summary>An application broadcast <c>[broadcast, *args]</c> to every node of the network.</summary>
    public ValueTask BroadcastAsync(params MsgValue[] args) => SendAsync(args, MainFlag.Broadcast, SubFlag.Broadcast);

    /// <summary>An application whisper <c>[whisper, *args]</c> to one connected peer.</summary>
    public async ValueTask WhisperAsync(string nodeId, params MsgValue[] args)
    {
        var peer = GetPeer(nodeId) ?? throw new InvalidOperationException($"No connection to node {nodeId}; connect first (ConnectAsync or ConnectToIdAsync).");
        await peer.WhisperAsync([(long)SubFlag.Whisper, .. args]);
    }

    /// <summary>Broadcasts a message whose payload is given whole (sub-flag first): for protocol layers above the mesh.</summary>
    public ValueTask BroadcastPayloadAsync(params MsgValue[] payload)
    {
        var message = CreateMessage(MainFlag.Broadcast, payload);
        _seenBroadcasts.TryAdd(message.Id, message.Time);
        return SendToAllAsync(message);
    }

    /// <summary>The next application message; waits until one arrives.</summary>
    public ValueTask<MeshMessage> ReceiveAsync(CancellationToken cancellationToken = default) => _received.Reader.ReadAsync(cancellationToken);

    /// <summary>Takes an application message if one is waiting.</summary>
    public bool TryReceive(out MeshMessage message)
    {
        if (_received.Reader.TryRead(out var m))
        {
            message = m;
            return true;
        }

        message = null!;
        return false;
    }

    /// <summary>A snapshot of the counters.</summary>
    public MeshStatistics GetStatistics() => new(
        Interlocked.Read(ref _framesIn), Interlocked.Read(ref _framesOut), Interlocked.Read(ref _bytesIn), Interlocked.Read(ref _bytesOut),
        Interlocked.Read(ref _badFrames), Interlocked.Read(ref _exceptions), _routing.Count, _awaiting.Count)
    {
        OpenConnections = Volatile.Read(ref _open),
        RefusedConnections = Interlocked.Read(ref _refusedConnections),
        RefusedPeers = Interlocked.Read(ref _refusedPeers),
        PreAuthLimitCloses = Interlocked.Read(ref _preAuthLimitCloses),
        PreAuthPeakBytes = Interlocked.Read(ref _preAuthPeakBytes),
    };

    /// <summary>Builds a message from us, stamped with the current time.</summary>
    public Message CreateMessage(MainFlag type, params MsgValue[] payload) => Message.Create(type, Id, UnixTime, payload);

    /// <summary>As <see cref="CreateMessage"/>, over <paramref name="payload"/> itself: the caller built it for this message and gives it up.</summary>
    /// <summary>A whisper over <paramref name="payload"/> (given up by the caller), packed only when it is written.</summary>
    internal Message CreateUnpackedWhisper(MsgValue[] payload) => Message.CreateUnpacked(MainFlag.Whisper, Id, UnixTime, payload);

    /// <summary>How long a stopping node lets its connections write what is queued before it closes them.</summary>
    private static readonly TimeSpan DisposeDrainTime = TimeSpan.FromSeconds(1);

    /// <summary>Stops listening and closes every connection, once what is queued on it is written (at most a second).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_maintenance is not null)
        {
            await _maintenance.DisposeAsync();
        }

        if (_listener is not null)
        {
            await _listener.DisposeAsync();
        }

        await _acceptLoop;
        var all = _routing.Values.Concat(_awaiting.Keys).Distinct().ToList();

        // What is queued goes out before the connections close (a client's placement copies of the write it made just
        // before stopping were dropped when the write loop had not yet taken them), for at most DisposeDrainTime of
        // real time: a peer that takes nothing (frozen) does not hold a stop up for longer.
        foreach (var peer in all)
        {
            peer.CompleteOutbound();
        }

        var closed = Task.WhenAll(all.Select(p => p.Closed));
        await Task.WhenAny(closed, Task.Delay(DisposeDrainTime));
        foreach (var peer in all)
        {
            peer.Close();
        }

        await closed;
        foreach (var pending in _pendingRequests.Values)
        {
            pending.TrySetCanceled();
        }

        _received.Writer.TryComplete();
        _stopping.Dispose();
    }

    internal void CountFrameIn(long bytes)
    {
        Interlocked.Increment(ref _framesIn);
        Interlocked.Add(ref _bytesIn, bytes);
        MeshMetrics.FramesIn.Add(1);
        MeshMetrics.BytesIn.Add(bytes);
    }

    internal void CountFramesOut(int frames, long bytes)
    {
        Interlocked.Add(ref _framesOut, frames);
        Interlocked.Add(ref _bytesOut, bytes);
        MeshMetrics.FramesOut.Add(frames);
        MeshMetrics.BytesOut.Add(bytes);
        MeshMetrics.Flushes.Add(1);
    }

    internal void CountBadFrame()
    {
        Interlocked.Increment(ref _badFrames);
        MeshMetrics.BadFrames.Add(1);
    }

    internal void CountPreAuthLimit()
    {
        Interlocked.Increment(ref _preAuthLimitCloses);
        MeshMetrics.PreAuthLimitCloses.Add(1);
    }

    internal void RecordPreAuthBytes(long bytes)
    {
        var peak = Interlocked.Read(ref _preAuthPeakBytes);
        while (bytes > peak)
        {
            var seen = Interlocked.CompareExchange(ref _preAuthPeakBytes, bytes, peak);
            if (seen == peak)
            {
                return;
            }

            peak = seen;
        }
    }

    internal void CountException()
    {
        Interlocked.Increment(ref _exceptions);
        MeshMetrics.Exceptions.Add(1);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            MeshTransportConnection? connection;
            try
            {
                connection = await _listener!.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                CountException();
                continue; // one failed accept (e.g. a reset during the TCP handshake) must not stop the listener
            }

            if (connection is null)
            {
                return;
            }

            if (RefuseOverLimit(connection) is { } reason)
            {
                Interlocked.Increment(ref _refusedConnections);
                MeshMetrics.RefusedConnections.Add(1, new KeyValuePair<string, object?>("reason", reason));
                connection.Abort();
                await connection.DisposeAsync();
                continue;
            }

            Attach(connection, isOutgoing: false);
        }
    }

    /// <summary>Null when an accepted connection may stay; else why not ("total" or "address"), logged once a minute per address.</summary>
    private string? RefuseOverLimit(MeshTransportConnection connection)
    {
        string? reason = null;
        var host = connection.RemoteHost;
        if (Volatile.Read(ref _open) >= Options.MaxConnections)
        {
            reason = "total";
        }
        else if (_incomingPerHost.GetValueOrDefault(host) >= Options.MaxConnectionsPerAddress)
        {
            reason = "address";
        }

        if (reason is null)
        {
            return null;
        }

        if (LogOncePerMinute(host))
        {
            MeshLog.ConnectionRefused(Logger, connection.RemoteEndPoint, reason == "total"
                ? $"{Options.MaxConnections} connections are open (MaxConnections)"
                : $"{Options.MaxConnectionsPerAddress} connections from {host} are open (MaxConnectionsPerAddress)");
        }

        return reason;
    }

    /// <summary>
    /// A connection the listener closed itself (a failed TLS handshake): a refused peer, counted with reason
    /// <c>tls</c>, and one warning per address a minute.
    /// </summary>
    private void OnListenerRefused(string remote, string host, string reason)
    {
        if (LogOncePerMinute("tls/" + host))
        {
            MeshLog.TlsRefused(Logger, remote, reason);
        }

        MeshMetrics.RefusedPeers.Add(1, new KeyValuePair<string, object?>("reason", "tls"));
        Interlocked.Increment(ref _refusedPeers); // after the log line, so a test that sees the count sees the line
    }

    /// <summary>True at most once a minute per <paramref name="key"/> (an address, prefixed by what is logged).</summary>
    private bool LogOncePerMinute(string key)
    {
        var now = Options.TimeProvider.GetTimestamp();
        var last = _limitLogged.GetValueOrDefault(key, long.MinValue);
        if (last != long.MinValue && Options.TimeProvider.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1))
        {
            return false;
        }

        if (_limitLogged.Count > 4096)
        {
            _limitLogged.Clear(); // many addresses: forget them rather than grow
        }

        _limitLogged[key] = now;
        return true;
    }

    private MeshPeer Attach(MeshTransportConnection connection, bool isOutgoing, string? expectedId = null, bool provesSecret = true)
    {
        var peer = new MeshPeer(this, connection, isOutgoing, expectedId, provesSecret && Options.Security != MeshSecurity.Off);
        _awaiting[peer] = Options.TimeProvider.GetTimestamp();
        Interlocked.Increment(ref _open);
        if (!isOutgoing)
        {
            _incomingPerHost.AddOrUpdate(peer.RemoteHost, 1, (_, n) => n + 1);
        }

        MeshMetrics.Connections.Add(1);

        // Queued before the loops start, so they are the first frames on the wire whatever arrives: our challenge
        // first (docs/PROTOCOL-EXTENSIONS.md; a py2p node ignores it), then the handshake. A peer's challenge
        // arriving before its handshake is how we know it is one of ours.
        if (peer.ProvesSecret)
        {
            peer.TryEnqueue(CreateMessage(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(peer.LocalNonce), MsgValue.From(MeshAuthentication.Features)));
        }

        peer.TryEnqueue(CreateMessage(MainFlag.Whisper, HandshakePayload()));
        peer.Start();
        return peer;
    }

    private MsgValue[] HandshakePayload() =>
    [
        (long)SubFlag.Handshake,
        MsgValue.BinAscii(Id),
        MsgValue.BinAscii(ProtocolId),
        MsgValue.Array(Address.Host, Address.Port),
        MsgValue.Array(Options.Compression.Select(c => MsgValue.From((long)c))),
    ];

    private ValueTask SendToAllAsync(Message message, MeshPeer? except = null)
    {
        List<Task>? slow = null;
        foreach (var peer in _routing.Values)
        {
            if (peer == except || peer.Id == message.Sender)
            {
                continue;
            }

            var send = peer.SendAsync(message);
            if (!send.IsCompletedSuccessfully)
            {
                (slow ??= []).Add(send.AsTask());
            }
        }

        return slow is null ? ValueTask.CompletedTask : new ValueTask(Task.WhenAll(slow));
    }

    internal void OnPeerClosed(MeshPeer peer)
    {
        MeshMetrics.Connections.Add(-1);
        Interlocked.Decrement(ref _open);
        if (!peer.IsOutgoing)
        {
            var host = peer.RemoteHost;
            if (_incomingPerHost.AddOrUpdate(host, 0, (_, n) => n - 1) <= 0)
            {
                ((ICollection<KeyValuePair<string, int>>)_incomingPerHost).Remove(new(host, 0));
            }
        }

        _awaiting.TryRemove(peer, out _);
        lock (_routingLock)
        {
            if (peer.Id is null || !((ICollection<KeyValuePair<string, MeshPeer>>)_routing).Remove(new(peer.Id, peer)))
            {
                return;
            }

            RefreshRoutingSnapshot();
        }

        MeshLog.PeerRemoved(Logger, peer.Id);
        Raise(PeerDisconnected, new MeshPeerEventArgs(peer));
        if (_disposed == 0 && OutgoingCount < Options.MaxOutgoing)
        {
            // As py2p does after losing a peer: ask the others for theirs, to heal the mesh. py2p sends the '*' as a
            // str but its handler compares it with b'*' (mesh.py), so a str '*' fails there with an IndexError that
            // py2p takes for an undecodable frame: it renegotiates compression to none and asks for a resend, and its
            // connections to other py2p nodes start dropping frames. A py2p peer (one that did not authenticate) gets
            // the bytes form its handler answers; our own nodes, the reference's str form.
            foreach (var other in _routing.Values)
            {
                other.TryEnqueue(CreateMessage(MainFlag.Whisper, (long)SubFlag.Request, other.IsAuthenticated ? "*" : MsgValue.BinAscii("*")));
            }
        }
    }

    private void Raise<T>(EventHandler<T>? handler, T args)
    {
        if (handler is null)
        {
            return;
        }

        try
        {
            handler(this, args);
        }
        catch (Exception e)
        {
            CountException();
            MeshLog.HandlerFailed(Logger, typeof(T).Name, e);
        }
    }

    private void RunMaintenance()
    {
        if (_disposed != 0)
        {
            return;
        }

        var time = Options.TimeProvider;
        var oldest = UnixTime - (long)Options.BroadcastWindow.TotalSeconds;
        foreach (var (id, sent) in _seenBroadcasts)
        {
            if (sent < oldest)
            {
                _seenBroadcasts.TryRemove(id, out _);
            }
        }

        var now = time.GetTimestamp();
        var stuckDeadline = now - (long)(Options.StuckFrameTimeout.TotalSeconds * time.TimestampFrequency);
        var handshakeDeadline = now - (long)(Options.HandshakeTimeout.TotalSeconds * time.TimestampFrequency);
        foreach (var peer in _routing.Values.Concat(_awaiting.Keys))
        {
            if (peer.IsStuckSince(stuckDeadline))
            {
                peer.Close($"it stayed in the middle of a frame for over {Options.StuckFrameTimeout.TotalSeconds:0.#} s");
            }
        }

        foreach (var (peer, since) in _awaiting)
        {
            if (since < handshakeDeadline && !peer.IsAdmitted && HandshakeWait != Timeout.InfiniteTimeSpan && !peer.IsClosed)
            {
                peer.Close(peer.Id is null
                    ? $"it sent no handshake within {Options.HandshakeTimeout.TotalSeconds:0.#} s"
                    : $"it did not authenticate within {Options.HandshakeTimeout.TotalSeconds:0.#} s");
                if (!peer.IsOutgoing && !peer.IsRefused)
                {
                    // A stranger that never got as far as a proof is a refused peer too (one it refused already is counted).
                    MeshMetrics.RefusedPeers.Add(1, new KeyValuePair<string, object?>("reason", "handshake_timeout"));
                    Interlocked.Increment(ref _refusedPeers);
                }
            }
        }
    }
}
