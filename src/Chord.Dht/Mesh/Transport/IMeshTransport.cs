namespace Chord.Dht.Mesh.Transport;

/// <summary>
/// How a <see cref="MeshNode"/> reaches other nodes: TCP sockets in production (<see cref="TcpTransport"/>),
/// in-memory pipes for very large test rings (<see cref="InMemoryTransport"/>). Both give the node byte streams;
/// the frames on them are the same.
/// </summary>
public interface IMeshTransport
{
    /// <summary>Starts listening; port 0 lets the transport choose one.</summary>
    ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken);

    /// <summary>
    /// True when connections are in-process pipes (<see cref="InMemoryTransport"/>, or a wrapper around one): a frame
    /// cannot be lost there, so the node does not bound handshakes by the wall clock (a loaded machine is no lost
    /// frame). False by default.
    /// </summary>
    bool IsInProcess => false;

    /// <summary>Opens a connection to <paramref name="address"/>.</summary>
    ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken);
}
