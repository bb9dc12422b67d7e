namespace Chord.Dht.Mesh.Transport;

/// <summary>A listening endpoint of an <see cref="IMeshTransport"/>.</summary>
public interface IMeshListener : IAsyncDisposable
{
    /// <summary>The bound address (the actual port when 0 was asked for).</summary>
    PeerAddress BoundAddress { get; }

    /// <summary>The next incoming connection, or null once the listener is closed.</summary>
    ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken);
}
