using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Chord.Dht.Mesh.Transport;

/// <summary>
/// A network inside one process: listeners and connections are pipes, ports are handed out by this instance.
/// Nodes that share an instance reach each other; it lets tests run hundreds of nodes without hundreds of
/// sockets, with exactly the framing and protocol code that TCP uses.
/// </summary>
public sealed class InMemoryTransport : IMeshTransport
{
    /// <inheritdoc />
    public bool IsInProcess => true;

    private readonly ConcurrentDictionary<PeerAddress, Listener> _listeners = new();
    private int _nextPort = 10_000;
    private int _nextClient;

    /// <inheritdoc />
    public ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken)
    {
        var address = new PeerAddress(host, port == 0 ? Interlocked.Increment(ref _nextPort) : port);
        var listener = new Listener(this, address);
        if (!_listeners.TryAdd(address, listener))
        {
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        }

        return ValueTask.FromResult<IMeshListener>(listener);
    }

    /// <inheritdoc />
    public ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken)
    {
        if (!_listeners.TryGetValue(address, out var listener))
        {
            throw new SocketException((int)SocketError.ConnectionRefused);
        }

        var toServer = new Pipe();
        var toClient = new Pipe();
        var client = new Connection(toClient, toServer, address.ToString());
        var server = new Connection(toServer, toClient, "in-memory client " + Interlocked.Increment(ref _nextClient));
        if (!listener.Pending.Writer.TryWrite(server))
        {
            throw new SocketException((int)SocketError.ConnectionRefused);
        }

        return ValueTask.FromResult<MeshTransportConnection>(client);
    }

    private sealed class Listener(InMemoryTransport owner, PeerAddress address) : IMeshListener
    {
        public Channel<Connection> Pending { get; } = Channel.CreateUnbounded<Connection>();

        public PeerAddress BoundAddress { get; } = address;

        public async ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            try
            {
                return await Pending.Reader.ReadAsync(cancellationToken);
            }
            catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
            {
                return null;
            }
        }

        public ValueTask DisposeAsync()
        {
            owner._listeners.TryRemove(BoundAddress, out _);
            Pending.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Connection(Pipe inbound, Pipe outbound, string remote) : MeshTransportConnection
    {
        private int _aborted;

        public override PipeReader Input => inbound.Reader;

        public override PipeWriter Output => outbound.Writer;

        public override string RemoteEndPoint { get; } = remote;

        public override void Abort()
        {
            if (Interlocked.Exchange(ref _aborted, 1) == 0)
            {
                // Wake our read loop; the node's loops then complete both pipes (each pipe end is touched only by
                // the loop that owns it), and the remote side sees its input end, as with a closed socket.
                inbound.Reader.CancelPendingRead();
                outbound.Writer.CancelPendingFlush();
            }
        }

        public override ValueTask DisposeAsync()
        {
            Abort();
            return ValueTask.CompletedTask;
        }
    }
}
