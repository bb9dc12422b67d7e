using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Grains.Hosting;

/// <summary>
/// Settings of the ring node every silo runs. Bind them from configuration (section <c>Chord</c> in the host) or
/// set them in <c>AddChord(options =&gt; ...)</c>. They are validated when the silo starts; a bad value stops the
/// start with a message that names the setting.
/// </summary>
public sealed class ChordOptions
{
    // The mesh's own defaults, so the two layers never disagree on a limit.
    private static readonly MeshOptions MeshDefaults = new();

    /// <summary>The configuration section the host binds.</summary>
    public const string SectionName = "Chord";

    /// <summary>The TCP port the ring node listens on; 0 lets the OS choose (the default: silos publish whatever they got).</summary>
    public int RingPort { get; set; }

    /// <summary>The address the ring node listens on; null uses the silo's advertised IP address.</summary>
    public string? ListenHost { get; set; }

    /// <summary>
    /// The address other nodes dial (host:port), when it is not the listening one (NAT, containers). Null: the
    /// listening host, or the silo's advertised IP when listening on every interface, with the bound port.
    /// </summary>
    public string? OutwardAddress { get; set; }

    /// <summary>The mesh subnet: nodes of another subnet are refused at the handshake. py2p nodes must use the same.</summary>
    public string Subnet { get; set; } = "chord";

    /// <summary>
    /// The secret every ring node of the cluster shares (at least 16 bytes as UTF-8; 32 random bytes in base64 is a
    /// good choice): ring nodes prove they know it to each other before anything else is exchanged
    /// (docs/SECURITY.md). Null: the built-in development secret, with a warning at start; fine on one machine, never
    /// for a ring other machines can reach. Give it by environment variable (<c>Chord__ClusterSecret</c>) rather than
    /// on a command line.
    /// </summary>
    public string? ClusterSecret { get; set; }

    /// <summary>
    /// The py2p interop opt-in: serve ring peers that do not authenticate (py2p nodes) as py2p peers, with py2p's own
    /// messages only. Anyone who reaches the ring port can then read and write keys as a py2p node can. False (the
    /// default): only nodes that know <see cref="ClusterSecret"/> are served.
    /// </summary>
    public bool AllowUnauthenticatedPeers { get; set; }

    /// <summary>
    /// A PKCS#12 (.pfx) file with the cluster's TLS certificate and its private key, the same on every silo: ring
    /// connections are then TLS (encrypted), and a peer must present exactly this certificate. Null (the default):
    /// plaintext ring traffic, authenticated by <see cref="ClusterSecret"/> only. py2p nodes cannot join a TLS ring.
    /// </summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>The password of <see cref="TlsCertificatePath"/>, if it has one (give it by environment variable).</summary>
    public string? TlsCertificatePassword { get; set; }

    /// <summary>Open ring connections at most; an incoming one over it is closed at once.</summary>
    public int MaxConnections { get; set; } = MeshDefaults.MaxConnections;

    /// <summary>Incoming ring connections from one IP address at most.</summary>
    public int MaxConnectionsPerAddress { get; set; } = MeshDefaults.MaxConnectionsPerAddress;

    /// <summary>The largest frame accepted from a peer before it authenticated (never more than <see cref="MaxFrameLength"/>).</summary>
    public int MaxPreAuthFrameLength { get; set; } = MeshDefaults.MaxPreAuthFrameLength;

    /// <summary>The bytes a peer may send before it authenticated (never more than <see cref="MaxFrameLength"/>).</summary>
    public int MaxPreAuthBytes { get; set; } = MeshDefaults.MaxPreAuthBytes;

    /// <summary>
    /// With <see cref="AllowUnauthenticatedPeers"/>, the largest frame accepted from a py2p peer after its handshake
    /// (never more than <see cref="MaxFrameLength"/>); default 1 MiB.
    /// </summary>
    public int MaxUnauthenticatedFrameLength { get; set; } = MeshDefaults.MaxUnauthenticatedFrameLength;

    /// <summary>How long a ring connection may take to complete its handshake and authentication.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = MeshDefaults.HandshakeTimeout;

    /// <summary>The largest frame accepted, in bytes (header included).</summary>
    public int MaxFrameLength { get; set; } = FrameCodec.DefaultMaxFrameLength;

    /// <summary>Positions of five that must acknowledge a write before it succeeds (with <see cref="ReadQuorum"/>, more than 5).</summary>
    public int WriteQuorum { get; set; } = 3;

    /// <summary>Positions of five a read waits for (py2p's majority is 3).</summary>
    public int ReadQuorum { get; set; } = 3;

    /// <summary>How long one ring operation may take before it fails with a timeout.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a read waits for the first three positions it asks before it asks the other two as well
    /// (<see cref="Chord.Dht.Ring.RingOptions.ReadHedgeAfter"/>); zero asks all five at once, as py2p does.
    /// </summary>
    public TimeSpan ReadHedgeAfter { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How long a starting silo waits to reach the ring (active silos and seeds) before it joins alone.</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Extra ring nodes (host:port) to connect to, for example py2p nodes or bare <c>chord node</c>s.</summary>
    public IList<string> Seeds { get; set; } = [];

    /// <summary>Compression methods offered to peers, most preferred first (zlib, gzip, bz2, snappy); empty for none.</summary>
    public IList<string> Compression { get; set; } = [.. Dht.Wire.Compression.Supported.Select(m => m.ToString().ToLowerInvariant())];

    /// <summary>
    /// Keep placement copies of a key's entries on ring predecessors (docs/DURABILITY.md#placement), so that a node
    /// that owns three or more of a key's five positions, or one of two nodes holding all five, can crash without the
    /// key being lost. On by default. False is py2p's placement, each position on its owner only: fewer frames per
    /// write, but two crashes can then take a key. Give every silo of a ring the same value.
    /// </summary>
    public bool KeepPlacementCopies { get; set; } = true;

    /// <summary>
    /// A directory for the node's entries (SQLite, written before a write is acknowledged); null keeps them in
    /// memory only, so a silo that restarts comes back empty and the ring repairs it. Each silo needs its own.
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>
    /// The salt of this silo's ring id (the id is a hash of the ring address and the salt, as py2p makes it). Null
    /// (the default): the salt kept in <see cref="DataDirectory"/>, or a new random one at each start. Set it, with a
    /// fixed <see cref="RingPort"/>, to give a silo the same ring position on every start without a data directory
    /// (benchmarks compare runs on one layout this way); a salt kept in the data directory wins over it. Each silo
    /// needs its own.
    /// </summary>
    public string? NodeIdSalt { get; set; }
}
