namespace Chord.Dht.Mesh;

/// <summary>A connection that joined or left the routing table.</summary>
public sealed class MeshPeerEventArgs(MeshPeer peer) : EventArgs
{
    /// <summary>The connection.</summary>
    public MeshPeer Peer { get; } = peer;
}
