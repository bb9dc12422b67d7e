using System.Diagnostics.Metrics;
using Chord.Dht.Mesh;

namespace Chord.Dht.Ring;

/// <summary>The ring layer's instruments, in the <c>Chord.Dht</c> meter.</summary>
internal static class RingMetrics
{
    private static readonly Meter Meter = new(MeshMetrics.MeterName + ".Ring", "1.0");

    public static readonly Histogram<int> LookupHops = Meter.CreateHistogram<int>("chord.ring.lookup_hops", "{hop}", "Forwarding hops per position lookup");
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("chord.ring.requests", "{request}", "Position requests this node started");
    public static readonly Counter<long> Forwarded = Meter.CreateCounter<long>("chord.ring.forwarded", "{request}", "Requests this node forwarded toward an owner");
    public static readonly Counter<long> RouteRetries = Meter.CreateCounter<long>("chord.ring.route_retries", "{retry}", "Requests re-routed around a dead next hop");
    public static readonly Counter<long> HandedOff = Meter.CreateCounter<long>("chord.ring.handed_off", "{entry}", "Entries moved to a new owner on join or unjoin");
}
