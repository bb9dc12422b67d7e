namespace Chord.Dht.Mesh;

/// <summary>
/// Which peers a <see cref="MeshNode"/> serves (docs/SECURITY.md). Our nodes prove to each other that they know
/// <see cref="MeshOptions.ClusterSecret"/> with an HMAC-SHA256 challenge–response before anything else is processed.
/// </summary>
public enum MeshSecurity
{
    /// <summary>
    /// The default: only peers that prove knowledge of the cluster secret are served. A py2p node (which cannot
    /// prove it) and a node with another secret are refused with one warning naming their address.
    /// </summary>
    Required = 0,

    /// <summary>
    /// The py2p interop opt-in: our nodes still authenticate each other (a wrong secret is still refused), but a peer
    /// that does not try (a py2p node) is served as py2p peers are, with <see cref="MeshPeer.IsAuthenticated"/>
    /// false so that the layers above accept only py2p's own messages from it.
    /// </summary>
    AllowUnauthenticated = 1,

    /// <summary>
    /// No authentication at all: the node neither sends a challenge nor answers one, exactly as a py2p 0.7 node. For
    /// tools and tests that stand in for py2p nodes; a node in this mode is refused by nodes in
    /// <see cref="Required"/> mode and is never <see cref="MeshPeer.IsAuthenticated"/>.
    /// </summary>
    Off = 2,
}
