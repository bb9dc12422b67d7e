using Chord.Dht.Wire;

namespace Chord.Dht.Mesh;

/// <summary>Settings of a <see cref="MeshNode"/>. Defaults match py2p 0.7 where it has one.</summary>
public sealed class MeshOptions
{
    /// <summary>The address to listen on. Default 127.0.0.1.</summary>
    public string ListenHost { get; set; } = "127.0.0.1";

    /// <summary>The port to listen on; 0 lets the OS choose (see <see cref="MeshNode.Address"/>).</summary>
    public int ListenPort { get; set; }

    /// <summary>The address other nodes should dial, when it differs from the listening one (NAT, 0.0.0.0); port 0 means the bound port.</summary>
    public PeerAddress? OutwardAddress { get; set; }

    /// <summary>The subnet: nodes of different subnets refuse each other. py2p's chord default is <c>chord</c>.</summary>
    public string Subnet { get; set; } = "chord";

    /// <summary>
    /// The salt of the node id. Null draws a random one at start, as py2p does (the id changes on restart);
    /// set a persisted value for a stable id.
    /// </summary>
    public string? Salt { get; set; }

    /// <summary>How many outgoing connections the node opens by itself from peers lists. py2p: 4.</summary>
    public int MaxOutgoing { get; set; } = 4;

    /// <summary>The largest frame body accepted; a longer length header closes the connection at once.</summary>
    public int MaxFrameLength { get; set; } = FrameCodec.DefaultMaxFrameLength;

    /// <summary>
    /// Which peers are served: <see cref="MeshSecurity.Required"/> (the default) serves only peers that prove they
    /// know <see cref="ClusterSecret"/>; <see cref="MeshSecurity.AllowUnauthenticated"/> also serves py2p nodes, as
    /// unauthenticated peers. See docs/SECURITY.md.
    /// </summary>
    public MeshSecurity Security { get; set; } = MeshSecurity.Required;

    /// <summary>
    /// The secret every node of the cluster shares (at least 16 bytes as UTF-8; 32 random bytes in base64 is a good
    /// choice). Null: the built-in <see cref="DevelopmentClusterSecret"/>, which anyone with this code knows; the node
    /// logs a warning saying so when it starts.
    /// </summary>
    public string? ClusterSecret { get; set; }

    /// <summary>The secret used when <see cref="ClusterSecret"/> is null: for a single machine and tests only.</summary>
    public const string DevelopmentClusterSecret = "chord-development-secret-do-not-use-in-production";

    /// <summary>
    /// A PKCS#12 (.pfx) file holding the cluster's TLS certificate and its private key, the same on every node: with
    /// it, every connection of the (TCP) transport is TLS, and a peer must present exactly this certificate. Null (the
    /// default): plaintext TCP. py2p nodes cannot connect to a TLS ring. See docs/SECURITY.md.
    /// </summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>The password of <see cref="TlsCertificatePath"/>, if it has one.</summary>
    public string? TlsCertificatePassword { get; set; }

    /// <summary>Open connections at most (both directions); an incoming connection over it is closed at once.</summary>
    public int MaxConnections { get; set; } = 1024;

    /// <summary>Incoming connections from one remote address (IP) at most; one more is closed at once.</summary>
    public int MaxConnectionsPerAddress { get; set; } = 64;

    /// <summary>
    /// The largest frame body accepted from a peer before it is authenticated (or, for a py2p peer in
    /// <see cref="MeshSecurity.AllowUnauthenticated"/> mode, before its handshake). Handshake and authentication
    /// frames are under 1 KiB. Never more than <see cref="MaxFrameLength"/>: the smaller of the two applies.
    /// </summary>
    public int MaxPreAuthFrameLength { get; set; } = 4096;

    /// <summary>
    /// The bytes a peer may send in all before it is authenticated (or before its handshake, for a py2p peer in
    /// <see cref="MeshSecurity.AllowUnauthenticated"/> mode); one more closes the connection. Never more than
    /// <see cref="MaxFrameLength"/>: the smaller of the two applies.
    /// </summary>
    public int MaxPreAuthBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// The largest frame body (after decompression) accepted from a py2p peer served without authentication in
    /// <see cref="MeshSecurity.AllowUnauthenticated"/> mode, once its handshake is in: a stranger's frames are held
    /// whole while they arrive, so this bounds what each such connection can make the node hold. Default 1 MiB; never
    /// more than <see cref="MaxFrameLength"/>: the smaller of the two applies. A py2p value larger than this cannot be
    /// stored through such a peer.
    /// </summary>
    public int MaxUnauthenticatedFrameLength { get; set; } = 1024 * 1024;

    /// <summary>Compression methods we accept, most preferred first. Empty: never compress.</summary>
    public IList<CompressionMethod> Compression { get; set; } = [.. Wire.Compression.Supported];

    /// <summary>
    /// Bodies shorter than this are sent raw even when compression is agreed (receivers fall back to raw bytes).
    /// Default 1 KiB: a frame that fits in one TCP segment saves no packet when compressed, and compressing it costs
    /// both ends (the receiver's digest over the raw bytes fails before it decompresses). Bodies that compression
    /// does not shrink by an eighth go raw too.
    /// </summary>
    public int CompressionThreshold { get; set; } = 1024;

    /// <summary>How long a connection may stay in the middle of a frame before it is closed. py2p: 60 s.</summary>
    public TimeSpan StuckFrameTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long broadcasts are remembered, and the age past which they are dropped. py2p: 60 s.</summary>
    public TimeSpan BroadcastWindow { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a connection may take to complete its handshake and authentication before it is closed; also how long
    /// <c>MeshNode.ConnectAsync</c> waits for them.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a lookup of a node's address by broadcast request waits. py2p: 10 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Frames that may wait in one connection's outbound queue; senders wait when it is full (backpressure).</summary>
    public int OutboundQueueCapacity { get; set; } = 8192;

    /// <summary>Application messages kept for <see cref="MeshNode.ReceiveAsync"/>; the oldest are dropped past this.</summary>
    public int ReceiveQueueCapacity { get; set; } = 10_000;

    /// <summary>How often the node checks timers (stuck frames, the broadcast window).</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock for every timer and message time; tests substitute a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>A copy, so a layer above can settle a setting (the salt) without changing the caller's object.</summary>
    public MeshOptions Clone()
    {
        var copy = (MeshOptions)MemberwiseClone();
        copy.Compression = [.. Compression];
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ListenHost))
        {
            throw new ArgumentException("MeshOptions.ListenHost is empty: give an address to listen on, such as 127.0.0.1.");
        }

        Check(ListenPort is >= 0 and <= 65535, nameof(ListenPort), ListenPort, "0 (any free port) to 65535");
        Check(MaxOutgoing >= 0, nameof(MaxOutgoing), MaxOutgoing, "0 or more");
        Check(MaxFrameLength >= 64, nameof(MaxFrameLength), MaxFrameLength, "at least 64 bytes");
        Check(CompressionThreshold >= 0, nameof(CompressionThreshold), CompressionThreshold, "0 or more");
        Check(OutboundQueueCapacity >= 1, nameof(OutboundQueueCapacity), OutboundQueueCapacity, "at least 1");
        Check(ReceiveQueueCapacity >= 1, nameof(ReceiveQueueCapacity), ReceiveQueueCapacity, "at least 1");
        Check(StuckFrameTimeout > TimeSpan.Zero, nameof(StuckFrameTimeout), StuckFrameTimeout, "a positive time");
        Check(BroadcastWindow > TimeSpan.Zero, nameof(BroadcastWindow), BroadcastWindow, "a positive time");
        Check(HandshakeTimeout > TimeSpan.Zero, nameof(HandshakeTimeout), HandshakeTimeout, "a positive time");
        Check(RequestTimeout > TimeSpan.Zero, nameof(RequestTimeout), RequestTimeout, "a positive time");
        Check(MaintenanceInterval > TimeSpan.Zero, nameof(MaintenanceInterval), MaintenanceInterval, "a positive time");
        Check(MaxConnections >= 1, nameof(MaxConnections), MaxConnections, "at least 1");
        Check(MaxConnectionsPerAddress >= 1, nameof(MaxConnectionsPerAddress), MaxConnectionsPerAddress, "at least 1");
        Check(MaxPreAuthFrameLength >= 512, nameof(MaxPreAuthFrameLength), MaxPreAuthFrameLength, "at least 512 bytes (a handshake is a few hundred)");
        Check(MaxUnauthenticatedFrameLength >= 1024, nameof(MaxUnauthenticatedFrameLength), MaxUnauthenticatedFrameLength, "at least 1024 bytes");
        Check(MaxPreAuthBytes >= 1024, nameof(MaxPreAuthBytes), MaxPreAuthBytes, "at least 1024 bytes (a handshake and authentication are under 1 KiB)");
        Check(Enum.IsDefined(Security), nameof(Security), Security, string.Join(", ", Enum.GetNames<MeshSecurity>()));
        if (ClusterSecret is not null && System.Text.Encoding.UTF8.GetByteCount(ClusterSecret) < MeshAuthentication.MinimumSecretBytes)
        {
            throw new ArgumentException(
                $"MeshOptions.ClusterSecret is {System.Text.Encoding.UTF8.GetByteCount(ClusterSecret)} bytes; allowed: at least {MeshAuthentication.MinimumSecretBytes} bytes (UTF-8), "
                + "the same on every node of the cluster, for example 32 random bytes in base64 (openssl rand -base64 32); or null for the development secret.");
        }

        if (TlsCertificatePath is not null && !File.Exists(TlsCertificatePath))
        {
            throw new ArgumentException($"MeshOptions.TlsCertificatePath is '{TlsCertificatePath}', which does not exist; allowed: a PKCS#12 (.pfx) file with the cluster certificate and its private key, or null for plaintext.");
        }

        ArgumentNullException.ThrowIfNull(Subnet, "MeshOptions.Subnet");
        ArgumentNullException.ThrowIfNull(TimeProvider, "MeshOptions.TimeProvider");
        foreach (var method in Compression)
        {
            if (!Wire.Compression.IsSupported((byte)method))
            {
                throw new ArgumentException($"MeshOptions.Compression lists {method}, which is not implemented; allowed: {string.Join(", ", Wire.Compression.Supported)}.");
            }
        }
    }

    /// <summary>The frame limit before authentication: <see cref="MaxPreAuthFrameLength"/>, never above <see cref="MaxFrameLength"/>.</summary>
    internal int EffectivePreAuthFrameLength => Math.Min(MaxPreAuthFrameLength, MaxFrameLength);

    /// <summary>The frame limit for a served, unauthenticated py2p peer: never above <see cref="MaxFrameLength"/>.</summary>
    internal int EffectiveUnauthenticatedFrameLength => Math.Min(MaxUnauthenticatedFrameLength, MaxFrameLength);

    /// <summary>The byte limit before authentication: <see cref="MaxPreAuthBytes"/>, never above <see cref="MaxFrameLength"/>.</summary>
    internal int EffectivePreAuthBytes => Math.Min(MaxPreAuthBytes, MaxFrameLength);

    private static void Check(bool ok, string name, object value, string allowed) => OptionCheck.InRange(ok, "MeshOptions", name, value, allowed);
}
