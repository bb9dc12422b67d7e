using Chord.Dht.Wire;

namespace Chord.Grains.Hosting;

/// <summary>
/// Settings of the ring node every silo runs. Bind them from configuration (section <c>Chord</c> in the host) or
/// set them in <c>AddChord(options =&gt; ...)</c>. They are validated when the silo starts; a bad value stops the
/// start with a message that names the setting.
/// </summary>
public sealed class ChordOptions
{
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

    /// <summary>The largest frame accepted, in bytes (header included).</summary>
    public int MaxFrameLength { get; set; } = FrameCodec.DefaultMaxFrameLength;

    /// <summary>Positions of five that must acknowledge a write before it succeeds (with <see cref="ReadQuorum"/>, more than 5).</summary>
    public int WriteQuorum { get; set; } = 3;

    /// <summary>Positions of five a read waits for (py2p's majority is 3).</summary>
    public int ReadQuorum { get; set; } = 3;

    /// <summary>How long one ring operation may take before it fails with a timeout.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a starting silo waits to reach the ring (active silos and seeds) before it joins alone.</summary>
    public TimeSpan JoinTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Extra ring nodes (host:port) to connect to, for example py2p nodes or bare <c>chord node</c>s.</summary>
    public IList<string> Seeds { get; set; } = [];

    /// <summary>Compression methods offered to peers, most preferred first (zlib, gzip, bz2, snappy); empty for none.</summary>
    public IList<string> Compression { get; set; } = [.. Dht.Wire.Compression.Supported.Select(m => m.ToString().ToLowerInvariant())];

    /// <summary>
    /// A directory for the node's entries (SQLite, written before a write is acknowledged); null keeps them in
    /// memory only, so a silo that restarts comes back empty and the ring repairs it. Each silo needs its own.
    /// </summary>
    public string? DataDirectory { get; set; }
}
