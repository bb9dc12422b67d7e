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
    public static readonly Counter<long> MembershipGossip = Meter.CreateCounter<long>("chord.ring.membership_gossip", "{message}", "Directory digests sent to a random peer (membership anti-entropy)");
    public static readonly Counter<long> ReadsWidened = Meter.CreateCounter<long>("chord.ring.reads_widened", "{read}", "Reads whose first quorum of positions did not decide (or not in time), so the other positions were asked too");

    public static readonly Counter<long> ReadRepairs = Meter.CreateCounter<long>("chord.ring.read_repairs", "{read}", "Reads that wrote the newest version back to lagging positions");
    public static readonly Counter<long> CrashRepairs = Meter.CreateCounter<long>("chord.ring.crash_repairs", "{entry}", "Positions re-created after a member vanished");
    public static readonly Counter<long> AntiEntropyRepairs = Meter.CreateCounter<long>("chord.ring.anti_entropy_repairs", "{entry}", "Positions repaired by the anti-entropy sweep");
    public static readonly Counter<long> PlacementCopies = Meter.CreateCounter<long>("chord.ring.placement_copies", "{entry}", "Copies kept on a predecessor because one node owned 3 or more of a key's positions");
    public static readonly Counter<long> TombstonesCollected = Meter.CreateCounter<long>("chord.ring.tombstones_collected", "{entry}", "Tombstones removed once every position had the delete");
    public static readonly Counter<long> Suspected = Meter.CreateCounter<long>("chord.ring.suspected", "{member}", "Members that turned suspect (a request unanswered for SuspectAfter, nothing else heard)");
    public static readonly Counter<long> SuspectSkips = Meter.CreateCounter<long>("chord.ring.suspect_skips", "{request}", "Requests not waited for because their owner was suspect");
    public static readonly Counter<long> MovedAway = Meter.CreateCounter<long>("chord.ring.moved_away", "{request}", "Refusals of writes a node decided to apply as a position's owner, a member having taken the position over in between (routed on to it, or counted as unanswered at the sender)");
    public static readonly Counter<long> RefusedBeforeFence = Meter.CreateCounter<long>("chord.ring.refused_before_fence", "{request}", "Requests for a position this node owns answered before its predecessor stopped answering for it and handed it over (reads as hints, writes refused)");
    public static readonly Counter<long> RefusedInputs = Meter.CreateCounter<long>("chord.ring.refused_inputs", "{message}", "Hostile or malformed input refused, each one counted (logged once a minute per peer)");
    public static readonly Counter<long> HandedOff = Meter.CreateCounter<long>("chord.ring.handed_off", "{entry}", "Entries moved to a new owner on join or unjoin");
}
