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

    /// <summary>Compression methods we accept, most preferred first. Empty: never compress.</summary>
    public IList<CompressionMethod> Compression { get; set; } = [.. Wire.Compression.Supported];

    /// <summary>Bodies shorter than this are sent raw even when compression is agreed (receivers fall back to raw bytes).</summary>
    public int CompressionThreshold { get; set; } = 256;

    /// <summary>How long a connection may stay in the middle of a frame before it is closed. py2p: 60 s.</summary>
    public TimeSpan StuckFrameTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long broadcasts are remembered, and the age past which they are dropped. py2p: 60 s.</summary>
    public TimeSpan BroadcastWindow { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long <c>MeshNode.ConnectAsync</c> waits for the peer's handshake.</summary>
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

    private static void Check(bool ok, string name, object value, string allowed) => OptionCheck.InRange(ok, "MeshOptions", name, value, allowed);
}
