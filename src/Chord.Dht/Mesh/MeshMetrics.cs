using System.Diagnostics.Metrics;

namespace Chord.Dht.Mesh;

/// <summary>The instruments of the <c>Chord.Dht</c> meter that the mesh layer records into.</summary>
public static class MeshMetrics
{
    /// <summary>The meter name every Chord.Dht instrument lives under.</summary>
    public const string MeterName = "Chord.Dht";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    internal static readonly Counter<long> FramesIn = Meter.CreateCounter<long>("chord.mesh.frames_in", "{frame}", "Frames received");
    internal static readonly Counter<long> FramesOut = Meter.CreateCounter<long>("chord.mesh.frames_out", "{frame}", "Frames sent");
    internal static readonly Counter<long> BytesIn = Meter.CreateCounter<long>("chord.mesh.bytes_in", "By", "Frame bytes received");
    internal static readonly Counter<long> BytesOut = Meter.CreateCounter<long>("chord.mesh.bytes_out", "By", "Frame bytes sent");
    internal static readonly Counter<long> Flushes = Meter.CreateCounter<long>("chord.mesh.flushes", "{flush}", "Writes of queued frames to a connection (frames_out / flushes is the frames each write carried)");
    internal static readonly Counter<long> BadFrames = Meter.CreateCounter<long>("chord.mesh.bad_frames", "{frame}", "Frames refused as malformed or too long");
    internal static readonly Counter<long> Exceptions = Meter.CreateCounter<long>("chord.mesh.exceptions", "{exception}", "Unexpected exceptions in connection loops and handlers");
    internal static readonly Counter<long> RefusedConnections = Meter.CreateCounter<long>("chord.mesh.refused_connections", "{connection}", "Incoming connections closed at once by a connection limit (tag reason: total, address)");
    internal static readonly Counter<long> RefusedPeers = Meter.CreateCounter<long>("chord.mesh.refused_peers", "{connection}", "Peers refused at authentication (tag reason: no_challenge, wrong_proof, malformed, handshake_timeout, tls)");
    internal static readonly Counter<long> Authenticated = Meter.CreateCounter<long>("chord.mesh.authenticated", "{connection}", "Connections whose peer proved the cluster secret");
    internal static readonly Counter<long> PreAuthLimitCloses = Meter.CreateCounter<long>("chord.mesh.preauth_limit_closes", "{connection}", "Connections closed for a frame or byte count over the pre-authentication limits");
    internal static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>("chord.mesh.connections", "{connection}", "Open connections");
}
