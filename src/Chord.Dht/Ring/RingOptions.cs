using Chord.Dht.Mesh;

namespace Chord.Dht.Ring;

/// <summary>Settings of a <see cref="RingNode"/>; the mesh settings are inside.</summary>
public sealed class RingOptions
{
    /// <summary>Settings of the mesh node underneath.</summary>
    public MeshOptions Mesh { get; set; } = new();

    /// <summary>The extension version this node's hello names (a test's older node of ours: 1, no batched accepts).</summary>
    internal int HelloVersionForTest { get; set; } = RingNode.ExtensionVersion;

    /// <summary>How long one operation (a read of five positions, a write) may take. py2p: 10 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many positions must agree on a value for a read to return it. py2p: 3 of 5.</summary>
    public int ReadQuorum { get; set; } = 3;

    /// <summary>How many positions must acknowledge a write for it to succeed.</summary>
    public int WriteQuorum { get; set; } = 3;

    /// <summary>How many ring neighbours on each side a node keeps connections to.</summary>
    public int NeighbourCount { get; set; } = 2;

    /// <summary>How often the node re-checks its finger and neighbour connections.</summary>
    public TimeSpan StabilizeInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many next hops a request tries before it gives up on a position.</summary>
    public int MaxRouteAttempts { get; set; } = 3;

    /// <summary>
    /// How long one attempt of a request waits for its answer before the request is sent again under a new id (around
    /// the next hop, unless that is the owner). An answer lost on the way, as when a relay's own next hop dies with the
    /// request, then costs this long instead of the whole <see cref="RequestTimeout"/>; the last of
    /// <see cref="MaxRouteAttempts"/> waits until the deadline. Every request of ours is safe to repeat (versioned
    /// stores, ballots, retrieves; a delta merges the same keys again).
    /// </summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A directory where the node keeps its entries and its id's salt (SQLite), so that a restarted node comes back
    /// with the same id (given the same address) and its data. Null (the default): nothing is kept.
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>
    /// The bound on re-replication after a crash: once a member is found gone, the surviving holders re-create the
    /// positions it owned within this time (each re-store has this deadline).
    /// </summary>
    public TimeSpan RepairTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Keep placement copies on ring predecessors (see DURABILITY.md). On by default; off, each position is held by its
    /// owner only, as in py2p, and two crashes can take a key whose positions fall on two nodes.
    /// </summary>
    public bool KeepPlacementCopies { get; set; } = true;

    /// <summary>How often the anti-entropy sweep runs.</summary>
    public TimeSpan AntiEntropyInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many entries one anti-entropy sweep checks at most (its rate limit).</summary>
    public int AntiEntropyBatch { get; set; } = 256;

    /// <summary>
    /// How long a member may leave a request unanswered, with nothing else heard from it, before this node suspects it
    /// (a frozen process keeps its sockets open): its positions are then not waited for, and it is routed around,
    /// until anything comes from it again.
    /// </summary>
    public TimeSpan SuspectAfter { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A read of a key the register serves asks a read quorum of its positions first (those this node owns, then the
    /// others), which decide it whenever they hold the same committed value; the other positions are asked when those
    /// answered without deciding (a write in flight, a position that lost its state), or once this much time passed
    /// without an answer that decides (a slow or frozen owner among the first). Zero asks all five at once, as py2p
    /// does. Each position not asked saves its request and answer frames (two per hop).
    /// </summary>
    public TimeSpan ReadHedgeAfter { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Mesh, "RingOptions.Mesh");
        Mesh.Validate();
        Check(RequestTimeout > TimeSpan.Zero, nameof(RequestTimeout), RequestTimeout, "a positive time");
        Check(ReadQuorum is >= 1 and <= 5, nameof(ReadQuorum), ReadQuorum, "1 to 5");
        Check(WriteQuorum is >= 1 and <= 5, nameof(WriteQuorum), WriteQuorum, "1 to 5");
        Check(NeighbourCount is >= 1 and <= 16, nameof(NeighbourCount), NeighbourCount, "1 to 16");
        Check(StabilizeInterval > TimeSpan.Zero, nameof(StabilizeInterval), StabilizeInterval, "a positive time");
        Check(MaxRouteAttempts >= 1, nameof(MaxRouteAttempts), MaxRouteAttempts, "at least 1");
        Check(AttemptTimeout > TimeSpan.Zero, nameof(AttemptTimeout), AttemptTimeout, "a positive time");
        Check(RepairTimeout > TimeSpan.Zero, nameof(RepairTimeout), RepairTimeout, "a positive time");
        Check(AntiEntropyInterval > TimeSpan.Zero, nameof(AntiEntropyInterval), AntiEntropyInterval, "a positive time");
        Check(SuspectAfter > TimeSpan.Zero, nameof(SuspectAfter), SuspectAfter, "a positive time");
        Check(ReadHedgeAfter >= TimeSpan.Zero && (RequestTimeout <= TimeSpan.Zero || ReadHedgeAfter < RequestTimeout), nameof(ReadHedgeAfter), ReadHedgeAfter, "zero (ask every position at once) or a time shorter than RequestTimeout");
        Check(AntiEntropyBatch >= 1, nameof(AntiEntropyBatch), AntiEntropyBatch, "at least 1");
        Check(ReadQuorum + WriteQuorum > 5, "ReadQuorum + WriteQuorum", ReadQuorum + WriteQuorum, "more than 5, so every read quorum meets every write quorum");
    }

    private static void Check(bool ok, string name, object value, string allowed) => OptionCheck.InRange(ok, "RingOptions", name, value, allowed);
}
