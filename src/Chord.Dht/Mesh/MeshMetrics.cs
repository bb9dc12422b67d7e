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
    internal static readonly Counter<long> BadFrames = Meter.CreateCounter<long>("chord.mesh.bad_frames", "{frame}", "Frames refused as malformed or too long");
    internal static readonly Counter<long> Exceptions = Meter.CreateCounter<long>("chord.mesh.exceptions", "{exception}", "Unexpected exceptions in connection loops and handlers");
    internal static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>("chord.mesh.connections", "{connection}", "Open connections");
}
