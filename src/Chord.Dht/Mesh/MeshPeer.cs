using System.Buffers;
using System.Threading.Channels;
using System.IO.Pipelines;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;

namespace Chord.Dht.Mesh;

/// <summary>
/// One connection of a <see cref="MeshNode"/> (py2p's <c>MeshConnection</c>): a read loop that parses frames from a
/// pipe, and a write loop that drains an outbound queue into the pipe, many frames per flush.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "The CTS has no timer; it is never disposed so ClosedToken stays readable after the close.")]
public sealed class MeshPeer
{
    private readonly MeshNode _node;
    private readonly MeshTransportConnection _transport;
    private readonly Channel<Message> _outbound;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile IReadOnlyList<CompressionMethod> _compression = [];

    // Every method ever agreed on this connection: what frames from the peer are decoded with. py2p 0.7 can announce
    // "no compression" (a str/bytes comparison bug in its mesh.py) while it keeps compressing with the method agreed
    // before, so a frame is accepted in any method this connection ever agreed, until the connection closes.
    private volatile IReadOnlyList<CompressionMethod> _receiveCompression = [];
    private volatile object? _sendMethod; // boxed CompressionMethod, or null for none
    private volatile Message? _lastSent;
    private long _partialSince = -1; // TimeProvider timestamp when the buffer was last left mid-frame; -1: not mid-frame
    private int _closeStarted;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> _pings = new(StringComparer.Ordinal);
    private long _framesIn;
    private long _framesOut;
    private long _preAuthBytes;
    private volatile bool _admitted;
    private volatile bool _authenticated;
    private volatile bool _refused;

    internal MeshPeer(MeshNode node, MeshTransportConnection transport, bool isOutgoing, string? expectedId = null, bool provesSecret = false)
    {
        _node = node;
        _transport = transport;
        IsOutgoing = isOutgoing;
        ExpectedId = expectedId;
        ProvesSecret = provesSecret;
        LocalNonce = node.Options.Security == MeshSecurity.Off ? [] : MeshAuthentication.NewNonce();
        _outbound = Channel.CreateBounded<Message>(new BoundedChannelOptions(node.Options.OutboundQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>The peer's node id, once its handshake arrived; null before.</summary>
    public string? Id { get; private set; }

    /// <summary>The address the peer advertised in its handshake (where others can dial it).</summary>
    public PeerAddress? Address { get; private set; }

    /// <summary>True when we dialled this connection; false when the peer did.</summary>
    public bool IsOutgoing { get; }

    /// <summary>The remote end of the connection, for logs.</summary>
    public string RemoteEndPoint => _transport.RemoteEndPoint;

    /// <summary>
    /// True when the peer proved it knows the cluster secret (docs/SECURITY.md). Always true for a served peer in
    /// <see cref="MeshSecurity.Required"/> mode; false for a py2p peer served in
    /// <see cref="MeshSecurity.AllowUnauthenticated"/> mode, whose messages beyond py2p's own a layer above must ignore.
    /// </summary>
    public bool IsAuthenticated => _authenticated;

    /// <summary>True once the node serves this connection (handshake, and authentication where it applies, done).</summary>
    internal bool IsAdmitted => _admitted;

    /// <summary>True once the peer was refused: nothing more from it is read, and the connection closes once our queue is out.</summary>
    internal bool IsRefused => _refused;

    /// <summary>The node id we dialled this connection for, or null (an incoming connection, an address-only dial).</summary>
    internal string? ExpectedId { get; }

    /// <summary>
    /// On this connection we challenge and prove the cluster secret: true unless security is off or we dialled an
    /// address only an unauthenticated peer named (then the connection is made as a py2p node makes it).
    /// </summary>
    internal bool ProvesSecret { get; }

    /// <summary>The nonce we challenged this peer with.</summary>
    internal byte[] LocalNonce { get; }

    /// <summary>The nonce the peer challenged us with, once its challenge arrived; null before.</summary>
    internal byte[]? RemoteNonce { get; set; }

    private volatile bool _bareDigests;

    /// <summary>
    /// The peer's challenge said it sends and takes bare digests (docs/PROTOCOL-EXTENSIONS.md): from then on our frames
    /// to it carry 32 zero bytes where the SHA-256 was, and a zero digest from it is taken as matching. Never set for
    /// a py2p node (it sends no challenge) nor on a connection made as py2p makes it.
    /// </summary>
    internal bool BareDigests
    {
        get => _bareDigests;
        set => _bareDigests = value;
    }

    /// <summary>The remote host (IP) alone, for the per-address connection limit.</summary>
    internal string RemoteHost => _transport.RemoteHost;

    /// <summary>The compression methods both sides accept, in our order of preference.</summary>
    public IReadOnlyList<CompressionMethod> AgreedCompression => _compression;

    /// <summary>The method our frames to this peer use, or null for none.</summary>
    public CompressionMethod? SendCompression => (CompressionMethod?)_sendMethod;

    /// <summary>Completes when the peer's handshake (and its authentication, where it applies) has been accepted.</summary>
    public Task Handshake => _handshake.Task;

    /// <summary>Completes when the connection has closed, for whatever reason.</summary>
    public Task Closed => _closed.Task;

    /// <summary>Cancelled when the connection closes: a wait for this peer's answer should end then.</summary>
    public CancellationToken ClosedToken => _closing.Token;

    /// <summary>True once the connection is closing or closed.</summary>
    public bool IsClosed => Volatile.Read(ref _closeStarted) != 0;

    /// <summary>Frames received on this connection.</summary>
    public long FramesIn => Interlocked.Read(ref _framesIn);

    /// <summary>Frames sent on this connection.</summary>
    public long FramesOut => Interlocked.Read(ref _framesOut);

    /// <summary>Queues a message built from <paramref name="payload"/> with our id and the current time.</summary>
    public ValueTask SendAsync(MainFlag type, params MsgValue[] payload) => SendAsync(_node.CreateMessage(type, payload));

    /// <summary>Queues a whisper to this peer.</summary>
    public ValueTask WhisperAsync(params MsgValue[] payload) => SendAsync(MainFlag.Whisper, payload);

    /// <summary>
    /// Whispers <paramref name="payload"/> without copying it into the message: for payloads built for this one
    /// message and never changed after (the ring's requests and answers, a copy of each per frame otherwise). The
    /// message is packed only when it is written (into the frame, through a reused buffer, when this peer takes bare
    /// digests). <paramref name="cancellationToken"/> ends a wait for room in a full queue (a request's deadline: a
    /// peer that stopped reading must not hold its sender past it).
    /// </summary>
    internal ValueTask WhisperOwningAsync(MsgValue[] payload, CancellationToken cancellationToken = default) =>
        SendAsync(_node.CreateUnpackedWhisper(payload), cancellationToken);

    /// <summary>
    /// Queues a ready message. Waits while the outbound queue is full (backpressure). A message queued on a closed
    /// connection is dropped: the caller learns of the close through <see cref="Closed"/>.
    /// </summary>
    public ValueTask SendAsync(Message message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return TryEnqueue(message) || IsClosed ? ValueTask.CompletedTask : SendSlowAsync(message, cancellationToken);
    }

    /// <summary>Queues a message if the queue has room, without waiting; false when full or closed.</summary>
    internal bool TryEnqueue(Message message)
    {
        if (message.Type is MainFlag.Whisper or MainFlag.Broadcast)
        {
            _lastSent = message;
        }

        return _outbound.Writer.TryWrite(message);
    }

    private async ValueTask SendSlowAsync(Message message, CancellationToken cancellationToken)
    {
        try
        {
            await _outbound.Writer.WriteAsync(message, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            // Closed: nothing will be sent; Closed tells the caller.
        }
    }

    /// <summary>
    /// Sends a ping and waits for the peer's pong. Because a connection keeps order both ways, everything the peer
    /// queued to us before it read the ping has arrived when this completes.
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        var nonce = Guid.NewGuid().ToString("N");
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[nonce] = pong;
        try
        {
            await SendAsync(MainFlag.Ping, (long)SubFlag.Ping, nonce);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, ClosedToken);
            await pong.Task.WaitAsync(linked.Token);
        }
        finally
        {
            _pings.TryRemove(nonce, out _);
        }
    }

    internal void OnPong(Message message)
    {
        if (message.Payload.Length >= 2 && message.Payload[1].Kind == MsgKind.Str && _pings.TryGetValue(message.Payload[1].AsString(), out var pong))
        {
            pong.TrySetResult();
        }
    }

    /// <summary>Closes this connection. Queued frames not yet written are dropped.</summary>
    public void Close() => Close(null);

    internal void Start()
    {
        _ = Task.Run(RunAsync);
    }

    internal void SetHandshake(string id, PeerAddress address, IReadOnlyList<CompressionMethod> theirs)
    {
        Id = id;
        Address = address;
        SetCompression(theirs);
    }

    internal void SetAuthenticated() => _authenticated = true;

    /// <summary>
    /// Refuses the peer: nothing more from it is processed, and the connection closes once what we queued (our own
    /// proof, so that the other side can tell why) is written; the handshake deadline closes it if that never happens.
    /// </summary>
    internal void Refuse()
    {
        _refused = true;
        CloseAfterQueue();
    }

    /// <summary>Nothing more is queued: the write loop writes what is, then closes the connection. False when it already was so.</summary>
    internal bool CompleteOutbound() => _outbound.Writer.TryComplete();

    /// <summary>
    /// Closes the connection once what is queued has been written (a duplicate being dropped may carry our proof, or
    /// frames queued before the other connection won), within <see cref="MeshOptions.HandshakeTimeout"/> at most.
    /// What arrives meanwhile is still read.
    /// </summary>
    internal void CloseAfterQueue()
    {
        if (CompleteOutbound())
        {
            _ = Task.Delay(_node.HandshakeBound, _node.Options.TimeProvider).ContinueWith(_ => Close(null), TaskScheduler.Default);
        }
    }

    /// <summary>The node serves this connection from now on; <see cref="Handshake"/> completes.</summary>
    internal void Admit()
    {
        _transport.LiftReadLimit();
        _admitted = true;
        _handshake.TrySetResult();
    }

    internal void SetCompression(IReadOnlyList<CompressionMethod> theirs)
    {
        var agreed = _node.Options.Compression.Where(theirs.Contains).ToArray();
        _compression = agreed;
        _receiveCompression = [.. agreed.Concat(_receiveCompression).Distinct()];
        _sendMethod = agreed.Length > 0 ? agreed[0] : null;
    }

    internal Message? LastSent => _lastSent;

    /// <summary>True when this connection has sat in the middle of a frame since before <paramref name="deadline"/>.</summary>
    internal bool IsStuckSince(long deadline)
    {
        var since = Interlocked.Read(ref _partialSince);
        return since >= 0 && since < deadline;
    }

    internal void Close(string? reason)
    {
        if (Interlocked.Exchange(ref _closeStarted, 1) != 0)
        {
            return;
        }

        if (reason is not null)
        {
            MeshLog.ClosingPeer(_node.Logger, Id ?? "(no handshake)", RemoteEndPoint, reason);
        }

        _outbound.Writer.TryComplete();
        _closing.Cancel();
        _transport.Abort();
        _handshake.TrySetException(new IOException($"The connection to {RemoteEndPoint} closed before its handshake."));
    }

    private async Task RunAsync()
    {
        var writer = WriteLoopAsync();
        try
        {
            await ReadLoopAsync();
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            // The connection ended under us: that is a normal way for a peer to go.
        }
        catch (Exception e)
        {
            _node.CountException();
            MeshLog.PeerLoopFailed(_node.Logger, Id ?? "(no handshake)", RemoteEndPoint, e);
        }
        finally
        {
            Close(null);
            await writer;
            await _transport.Input.CompleteAsync();
            await _transport.DisposeAsync();
            _closed.TrySetResult();
            _node.OnPeerClosed(this);
        }
    }

    private async Task ReadLoopAsync()
    {
        var input = _transport.Input;
        var options = _node.Options;
        if (!_admitted)
        {
            // The transport takes no more than the budget from the network: what a stranger can make us hold.
            _transport.LimitReads(options.EffectivePreAuthBytes);
        }

        while (!_closing.IsCancellationRequested)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(_closing.Token);
            }
            catch (ReadBudgetExceededException e) when (!_admitted)
            {
                _node.RecordPreAuthBytes(e.Budget);
                _node.CountPreAuthLimit();
                Close($"it sent more than {e.Budget} bytes before it authenticated, over the limit of {options.EffectivePreAuthBytes}");
                return;
            }

            if (result.IsCanceled)
            {
                return;
            }

            var buffer = result.Buffer;
            var consumed = buffer.Start;
            var framesBefore = FramesIn;
            long left = 0; // bytes left in the buffer after the complete frames, read before AdvanceTo releases it
            if (!_admitted)
            {
                // Before deciding anything, the real high-water mark: every byte this stranger got us to hold, the
                // frames already consumed and all that is buffered now. A transport that caps its reads keeps it at
                // most the budget; for one that cannot, the check after the frames below keeps it at most the budget
                // between reads, so one read can add only what one transport read holds.
                _node.RecordPreAuthBytes(_preAuthBytes + buffer.Length);
            }

            try
            {
                while (true)
                {
                    // Until the peer is served, a small frame limit and a small byte budget: a stranger costs a few KiB.
                    // A py2p peer served without authentication (the opt-in mode) has its own, smaller limit; a frame
                    // is decompressed to no more than the limit it arrived under, so a tiny compressed frame cannot
                    // make a stranger's connection hold megabytes.
                    var admitted = _admitted;
                    var limit = !admitted ? options.EffectivePreAuthFrameLength
                        : _authenticated || options.Security == MeshSecurity.Off ? options.MaxFrameLength
                        : options.EffectiveUnauthenticatedFrameLength;
                    var status = FrameCodec.TryReadFrame(ref buffer, limit, out var body, out var declared);
                    if (status == FrameReadStatus.NeedMore)
                    {
                        break;
                    }

                    if (status == FrameReadStatus.TooLong)
                    {
                        _node.CountBadFrame();
                        if (!admitted)
                        {
                            _node.CountPreAuthLimit();
                        }

                        Close(admitted
                            ? $"its frame header announces {declared} bytes, over the maximum of {limit}{(limit < options.MaxFrameLength ? " for an unauthenticated peer" : "")}"
                            : $"its frame header announces {declared} bytes before it authenticated, over the pre-authentication maximum of {limit}");
                        return;
                    }

                    if (!admitted)
                    {
                        var sent = _preAuthBytes += FrameCodec.HeaderLength + body.Length;
                        if (sent > options.EffectivePreAuthBytes)
                        {
                            _node.CountPreAuthLimit();
                            Close($"it sent {sent} bytes before it authenticated, over the limit of {options.EffectivePreAuthBytes}");
                            return;
                        }

                    }

                    consumed = buffer.Start;
                    Message message;
                    try
                    {
                        message = FrameCodec.DecodeBody(body, _receiveCompression, limit, _bareDigests);
                    }
                    catch (MsgFormatException e)
                    {
                        _node.CountBadFrame();
                        Close("it sent a malformed frame: " + e.Message);
                        return;
                    }

                    Interlocked.Increment(ref _framesIn);
                    _node.CountFrameIn(FrameCodec.HeaderLength + body.Length);
                    await _node.DispatchAsync(this, message);
                    if (IsClosed)
                    {
                        return;
                    }
                }
            }
            finally
            {
                left = buffer.Length;
                if (!IsClosed)
                {
                    input.AdvanceTo(consumed, buffer.End);
                }
            }

            // Still not served: the part of a frame left in the buffer counts against the budget now, not when the
            // frame completes (it would count then anyway, since only a complete frame can admit the peer).
            if (!_admitted && !IsClosed && _preAuthBytes + left > options.EffectivePreAuthBytes)
            {
                _node.CountPreAuthLimit();
                Close($"it sent {_preAuthBytes + left} bytes before it authenticated, over the limit of {options.EffectivePreAuthBytes}");
                return;
            }

            if (left == 0)
            {
                Interlocked.Exchange(ref _partialSince, -1);
            }
            else if (FramesIn != framesBefore || Interlocked.Read(ref _partialSince) < 0)
            {
                // A new partial frame starts its clock now.
                Interlocked.Exchange(ref _partialSince, options.TimeProvider.GetTimestamp());
            }

            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The bytes after which a write-loop batch takes no more frames and flushes (and waits when the connection does not
    /// drain): a batch holds at most this plus one frame.
    /// </summary>
    internal const int MaxBatchBytes = 64 * 1024;

    private async Task WriteLoopAsync()
    {
        var output = _transport.Output;
        var reader = _outbound.Reader;
        var threshold = _node.Options.CompressionThreshold;
        try
        {
            while (await reader.WaitToReadAsync(_closing.Token))
            {
                long bytes = 0;
                var frames = 0;
                // A batch ends at MaxBatchBytes even while senders keep the queue full: each read makes room for a
                // waiting sender, so an unbounded batch would drain every waiting sender into the output's buffer
                // without its flush ever pushing back (a frozen peer would then hold all of it in memory).
                while (output.UnflushedBytes < MaxBatchBytes && reader.TryRead(out var message))
                {
                    var before = output.UnflushedBytes;
                    // Our challenge always keeps its digest: it is what tells the peer we take bare ones, so it cannot be one.
                    FrameCodec.Write(output, message, SendCompression, compressFrom: threshold, rawUnlessSmaller: true,
                        bareDigest: _bareDigests && !message.Is((SubFlag)MeshAuthentication.ChallengeFlag));
                    bytes += output.UnflushedBytes - before;
                    frames++;
                }

                // One flush per batch: every frame queued while the last flush ran goes out in one write.
                var flush = await output.FlushAsync(_closing.Token);
                Interlocked.Add(ref _framesOut, frames);
                _node.CountFramesOut(frames, bytes);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            // Closed while writing.
        }
        finally
        {
            Close(null);
            try
            {
                // A stream pipe writer flushes what is still buffered on completion; Close has disposed the
                // stream, so that throws when a flush was cut short. Those frames are dropped, as Close says; the
                // exception must not escape, or RunAsync never completes Closed nor tells the node (a hang in
                // MeshNode.DisposeAsync and a dead peer left in the routing table).
                await output.CompleteAsync();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidOperationException or OperationCanceledException)
            {
                // Nothing more can be sent on a closed connection.
            }
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{(IsOutgoing ? "→" : "←")} {Id ?? "?"} @ {Address?.ToString() ?? RemoteEndPoint}";
}
