using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// A frame a <see cref="RawPeer"/> received, with the compression its body turned out to use and whether its digest
/// was bare (32 zero bytes: docs/PROTOCOL-EXTENSIONS.md, sent only to a peer whose challenge announced them).
/// </summary>
internal sealed record RawFrame(Message Message, CompressionMethod? Compression, bool Bare = false);

/// <summary>
/// A hand-driven TCP client of a mesh node: it sends whatever bytes a test gives it, and a background loop reads
/// and decodes everything the node sends, and notices when the node closes the connection (EOF or reset).
/// </summary>
internal sealed class RawPeer : IAsyncDisposable
{
    /// <summary>The protocol id of the default subnet, which the nodes under test use.</summary>
    public static readonly string ChordProtocolId = NodeIdentity.ProtocolId("chord");

    private readonly Socket _socket;
    private readonly ConcurrentQueue<RawFrame> _frames = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Task _reader;
    private readonly Lock _gate = new();
    private readonly List<(Func<Message, bool> Predicate, TaskCompletionSource<RawFrame?> Done)> _waiters = [];
    private int _undecodable;

    private RawPeer(Socket socket)
    {
        _socket = socket;
        LocalEndPoint = socket.LocalEndPoint?.ToString() ?? "?";
        Id = NodeIdentity.NodeId("127.0.0.1", 1, ChordProtocolId, "raw-" + Guid.NewGuid().ToString("N"));
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>This client's end of the connection, as the node logs it (the node's remote end point).</summary>
    public string LocalEndPoint { get; }

    /// <summary>The node id this client claims when it sends a handshake (fresh for every client).</summary>
    public string Id { get; }

    /// <summary>True once the node closed the connection: a read returned 0 or failed.</summary>
    public bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>Frames from the node that no method decoded (always 0 from a healthy node).</summary>
    public int Undecodable => Volatile.Read(ref _undecodable);

    /// <summary>Everything received so far, in order.</summary>
    public IReadOnlyList<RawFrame> Frames => [.. _frames];

    /// <summary>Opens a TCP connection to <paramref name="address"/>.</summary>
    public static async Task<RawPeer> ConnectAsync(PeerAddress address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(IPAddress.Parse(address.Host), address.Port);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new RawPeer(socket);
    }

    /// <summary>Accepts one connection on <paramref name="listener"/> (a node dialling an address the test named).</summary>
    public static async Task<RawPeer> AcceptAsync(TcpListener listener)
    {
        var socket = await listener.AcceptSocketAsync().WaitAsync(Eventually.Deadline);
        socket.NoDelay = true;
        return new RawPeer(socket);
    }

    /// <summary>Sends raw bytes; throws when the connection is gone.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        await _sendLock.WaitAsync();
        try
        {
            while (!bytes.IsEmpty)
            {
                var sent = await _socket.SendAsync(bytes, SocketFlags.None);
                bytes = bytes[sent..];
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends raw bytes; false when the connection turned out to be gone.</summary>
    public async Task<bool> TrySendAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await SendAsync(bytes);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            return false;
        }
    }

    /// <summary>A well-formed message from this client's id, stamped with the current time.</summary>
    public Message Create(MainFlag type, params MsgValue[] payload) =>
        Message.Create(type, Id, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), payload);

    /// <summary>Sends a well-formed, uncompressed message from this client.</summary>
    public Task SendMessageAsync(MainFlag type, params MsgValue[] payload) => SendAsync(FrameCodec.Encode(Create(type, payload)));

    /// <summary>The mesh handshake of this client: <c>[handshake, id, protocol id, [host, port], [compression]]</c>.</summary>
    public Message Handshake(IEnumerable<CompressionMethod>? compression = null, string? protocolId = null) => Create(
        MainFlag.Whisper,
        (long)SubFlag.Handshake,
        MsgValue.BinAscii(Id),
        MsgValue.BinAscii(protocolId ?? ChordProtocolId),
        MsgValue.Array("127.0.0.1", 1L),
        MsgValue.Array((compression ?? []).Select(c => MsgValue.From((long)c))));

    /// <summary>Handshakes with <paramref name="node"/> and waits until the node has this client in its routing table.</summary>
    public async Task HandshakeAsync(MeshNode node, IEnumerable<CompressionMethod>? compression = null)
    {
        await SendAsync(FrameCodec.Encode(Handshake(compression)));

        // The node answers an accepted handshake with its peers list, after putting us in its routing table.
        var peers = await WhenReceivedAsync(m => m.Type == MainFlag.Whisper && m.Is(SubFlag.Peers)).WaitAsync(Eventually.Deadline);
        Assert.True(peers is not null, $"the node closed raw client {Id[..8]} instead of accepting its handshake");
        Assert.NotNull(node.GetPeer(Id));
    }

    /// <summary>
    /// Authenticates as one of our nodes would (docs/PROTOCOL-EXTENSIONS.md): our challenge, the handshake, then the
    /// proof over the node's challenge with <paramref name="secret"/> (null: the development secret). Waits for the
    /// node's peers list when <paramref name="expectAccepted"/>, else returns once the proof is sent.
    /// </summary>
    /// <param name="node">The node this client is connected to.</param>
    /// <param name="secret">The cluster secret to prove; null: the development secret.</param>
    /// <param name="expectAccepted">Wait for the node to serve this client, and assert it does.</param>
    /// <param name="features">When given, the challenge's features packet (as our nodes send it); older nodes of ours sent none.</param>
    public async Task AuthenticatedHandshakeAsync(MeshNode node, string? secret = null, bool expectAccepted = true, int? features = null)
    {
        var nonce = RandomNumberGenerator.GetBytes(MeshAuthentication.Length);
        await SendAsync(FrameCodec.Encode(features is { } announced
            ? Create(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(nonce), MsgValue.From(announced))
            : Create(MainFlag.Whisper, (long)MeshAuthentication.ChallengeFlag, MsgValue.Bin(nonce))));
        await SendAsync(FrameCodec.Encode(Handshake()));
        var challenge = await WhenReceivedAsync(m => m.Is((SubFlag)MeshAuthentication.ChallengeFlag)).WaitAsync(Eventually.Deadline);
        Assert.True(challenge is not null, "the node sent no challenge");
        var proof = MeshAuthentication.Proof(System.Text.Encoding.UTF8.GetBytes(secret ?? MeshOptions.DevelopmentClusterSecret), ChordProtocolId,
            MeshAuthentication.Role.Dialler, Id, node.Id, challenge.Message.Payload[1].AsBytes().Span, nonce);
        await SendAsync(FrameCodec.Encode(Create(MainFlag.Whisper, (long)MeshAuthentication.ProofFlag, MsgValue.Bin(proof))));
        if (expectAccepted)
        {
            var peers = await WhenReceivedAsync(m => m.Type == MainFlag.Whisper && m.Is(SubFlag.Peers)).WaitAsync(Eventually.Deadline);
            Assert.True(peers is not null, $"the node closed raw client {Id[..8]} instead of accepting its authentication");
            Assert.True(node.GetPeer(Id) is { IsAuthenticated: true }, "the node serves the raw client as authenticated");
        }
    }

    /// <summary>Waits until a received frame matches <paramref name="predicate"/>, and returns the first that does.</summary>
    public async Task<RawFrame> WaitForAsync(Func<Message, bool> predicate, string because)
    {
        RawFrame? found = null;
        await Eventually.UntilAsync(() => (found = _frames.FirstOrDefault(f => predicate(f.Message))) is not null, because);
        return found!;
    }

    /// <summary>
    /// Completes with the first frame, received already or later, that matches <paramref name="predicate"/>, or
    /// with null once the connection has closed without one. Event-driven: no polling.
    /// </summary>
    public Task<RawFrame?> WhenReceivedAsync(Func<Message, bool> predicate)
    {
        lock (_gate)
        {
            if (_frames.FirstOrDefault(f => predicate(f.Message)) is { } found)
            {
                return Task.FromResult<RawFrame?>(found);
            }

            if (IsClosed)
            {
                return Task.FromResult<RawFrame?>(null);
            }

            var done = new TaskCompletionSource<RawFrame?>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((predicate, done));
            return done.Task;
        }
    }

    /// <summary>Waits (within the default deadline) until the node has closed this connection.</summary>
    public Task WaitClosedAsync(string because) => Eventually.UntilAsync(() => IsClosed, because);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _reader;
        _sendLock.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        var chunk = new byte[64 * 1024];
        var pending = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(chunk, SocketFlags.None);
                if (read == 0)
                {
                    return;
                }

                pending.Write(chunk.AsSpan(0, read));
                var buffer = new ReadOnlySequence<byte>(pending.WrittenMemory);
                while (FrameCodec.TryReadFrame(ref buffer, int.MaxValue, out var body, out _) == FrameReadStatus.Frame)
                {
                    var frame = Decode(body);
                    lock (_gate)
                    {
                        _frames.Enqueue(frame);
                        _waiters.RemoveAll(w => w.Predicate(frame.Message) && w.Done.TrySetResult(frame));
                    }
                }

                var rest = buffer.ToArray();
                pending.Clear();
                pending.Write(rest);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // A reset counts as a close, as does our own dispose.
        }
        finally
        {
            lock (_gate)
            {
                _closed.TrySetResult();
                foreach (var (_, done) in _waiters)
                {
                    done.TrySetResult(null);
                }

                _waiters.Clear();
            }
        }
    }

    private RawFrame Decode(ReadOnlySequence<byte> body)
    {
        // With its digest first (raw, then each method); then, only if none matched, as a bare frame (32 zero bytes
        // where the digest goes: docs/PROTOCOL-EXTENSIONS.md), which marks it Bare. A test decides whether the node
        // should have sent one.
        foreach (var bare in new[] { false, true })
        {
            try
            {
                return new RawFrame(FrameCodec.DecodeBody(body, [], acceptBareDigest: bare), null, bare);
            }
            catch (MsgFormatException)
            {
                // Not raw: find the method that decodes it.
            }

            foreach (var method in Compression.Supported)
            {
                try
                {
                    return new RawFrame(FrameCodec.DecodeBody(body, [method], acceptBareDigest: bare), method, bare);
                }
                catch (MsgFormatException)
                {
                    // Try the next method.
                }
            }
        }

        Interlocked.Increment(ref _undecodable);
        return new RawFrame(Message.Create(MainFlag.Pong, "undecodable", 0, (long)SubFlag.Pong), null);
    }
}
