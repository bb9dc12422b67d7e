using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>A node of the ring as this node knows it.</summary>
/// <param name="Id">Its node id.</param>
/// <param name="Address">Where it listens.</param>
/// <param name="IsStoring">True when it has joined (stores data); false while leeching.</param>
/// <param name="Epoch">Its own count of join/unjoin changes; newer news about a member wins. -1: learnt first hand from a py2p node.</param>
public sealed record RingMember(string Id, PeerAddress Address, bool IsStoring, long Epoch)
{
    /// <summary>Its position on the ring (its id read as a number).</summary>
    public RingPosition Position { get; } = RingPosition.FromBase58(Id);
}
