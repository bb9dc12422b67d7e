namespace Chord.Dht.Mesh;

/// <summary>A snapshot of a node's counters (py2p's <c>status</c>).</summary>
/// <param name="FramesIn">Frames received and decoded.</param>
/// <param name="FramesOut">Frames written.</param>
/// <param name="BytesIn">Bytes of received frames, headers included.</param>
/// <param name="BytesOut">Bytes of written frames, headers included.</param>
/// <param name="BadFrames">Frames refused: too long, digest mismatch, malformed.</param>
/// <param name="Exceptions">Unexpected exceptions caught in loops and handlers.</param>
/// <param name="Peers">Connections in the routing table.</param>
/// <param name="Awaiting">Connections waiting for their handshake.</param>
public sealed record MeshStatistics(long FramesIn, long FramesOut, long BytesIn, long BytesOut, long BadFrames, long Exceptions, int Peers, int Awaiting)
{
    /// <summary>Connections open now, in both directions, served or not.</summary>
    public int OpenConnections { get; init; }

    /// <summary>Incoming connections closed at once for <c>MaxConnections</c> or <c>MaxConnectionsPerAddress</c>.</summary>
    public long RefusedConnections { get; init; }

    /// <summary>Peers refused at authentication: a wrong proof, no attempt in <see cref="MeshSecurity.Required"/> mode, or a failed TLS handshake.</summary>
    public long RefusedPeers { get; init; }

    /// <summary>Connections closed for a frame or a byte count over the pre-authentication limits.</summary>
    public long PreAuthLimitCloses { get; init; }

    /// <summary>
    /// The high-water mark of bytes received from a connection before it was served: the frames it had sent and what
    /// was buffered beyond them, counted at each read before the limits decide (so a connection closed for the limit
    /// shows what it got us to hold). At most <see cref="MeshOptions.MaxPreAuthBytes"/> on TCP and TLS, whose
    /// connections take no more than that from their stream before the peer is served (with TLS, the decrypted stream:
    /// the TLS layer below reads ahead up to one record); on a transport that cannot cap its reads, at most that plus
    /// one read.
    /// </summary>
    public long PreAuthPeakBytes { get; init; }
}
