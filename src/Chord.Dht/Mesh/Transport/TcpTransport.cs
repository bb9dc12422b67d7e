using System.Net;
using System.Net.Sockets;

namespace Chord.Dht.Mesh.Transport;

/// <summary>TCP sockets, with System.IO.Pipelines over each socket.</summary>
public sealed class TcpTransport : IMeshTransport
{
    /// <summary>The shared instance.</summary>
    public static TcpTransport Instance { get; } = new();

    /// <inheritdoc />
    public ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken)
    {
        var (socket, bound) = ListenSocket(host, port);
        return ValueTask.FromResult<IMeshListener>(new TcpListener(socket, bound));
    }

    /// <summary>A bound, listening socket and its address (the TLS transport accepts on it itself).</summary>
    internal static ValueTask<(Socket Socket, PeerAddress Bound)> ListenSocketAsync(string host, int port) => ValueTask.FromResult(ListenSocket(host, port));

    private static (Socket Socket, PeerAddress Bound) ListenSocket(string host, int port)
    {
        var endPoint = new IPEndPoint(ResolveListen(host), port);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var bound = (IPEndPoint)socket.LocalEndPoint!;
        return (socket, new PeerAddress(host, bound.Port));
    }

    /// <inheritdoc />
    public async ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new TcpConnection(socket);
    }

    private static IPAddress ResolveListen(string host) =>
        IPAddress.TryParse(host, out var ip) ? ip
        : string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
        : Dns.GetHostAddresses(host).FirstOrDefault() ?? throw new ArgumentException($"Cannot resolve listen host '{host}'.", nameof(host));

    private sealed class TcpListener(Socket socket, PeerAddress bound) : IMeshListener
    {
        public PeerAddress BoundAddress { get; } = bound;

        public async ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            try
            {
                var accepted = await socket.AcceptAsync(cancellationToken);
                accepted.NoDelay = true;
                return new TcpConnection(accepted);
            }
            catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                || (e is SocketException se && se.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted))
            {
                return null;
            }
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
