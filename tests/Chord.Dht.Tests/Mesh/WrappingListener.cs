using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;

namespace Chord.Dht.Tests.Mesh;

/// <summary>A listener that hands every accepted connection through <paramref name="wrap"/> (a fault-injecting test transport's own connection).</summary>
internal sealed class WrappingListener(IMeshListener inner, Func<MeshTransportConnection, MeshTransportConnection> wrap) : IMeshListener
{
    public PeerAddress BoundAddress => inner.BoundAddress;

    public async ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken) =>
        await inner.AcceptAsync(cancellationToken) is { } accepted ? wrap(accepted) : null;

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
