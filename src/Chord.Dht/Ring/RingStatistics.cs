namespace Chord.Dht.Ring;

/// <summary>A snapshot of a ring node's storage and repair counters.</summary>
/// <param name="Entries">Positions stored with a value.</param>
/// <param name="Tombstones">Positions holding a delete not yet collected.</param>
/// <param name="RepairsInProgress">Crash repairs and anti-entropy sweeps running now; 0 means repair is done.</param>
/// <param name="CrashRepairs">Positions re-created after members vanished.</param>
/// <param name="AntiEntropyRepairs">Positions repaired by anti-entropy sweeps.</param>
/// <param name="PlacementCopies">Copies sent to the predecessor under the placement rule.</param>
public sealed record RingStatistics(int Entries, int Tombstones, int RepairsInProgress, long CrashRepairs, long AntiEntropyRepairs, long PlacementCopies)
{
    /// <summary>
    /// Messages, or parts of messages, refused as hostile or out of range (a version or ballot outside the range, an
    /// extension or trailing packets from an unauthenticated peer): every one, though each peer is logged once a minute.
    /// </summary>
    public long RefusedInputs { get; init; }

    /// <summary>
    /// Reads started here whose first quorum of positions did not decide them (or not within
    /// <see cref="RingOptions.ReadHedgeAfter"/>), so that the other positions were asked too.
    /// </summary>
    public long ReadsWidened { get; init; }

    /// <summary>Retrieves of a position this node answered as its owner, for itself or for another node.</summary>
    public long RetrievesAnswered { get; init; }

    /// <summary>
    /// Refusals of writes this node decided to apply as a position's owner, a member having taken the position over
    /// in between (the write is routed on to it, or, refused again, counts as unanswered at its sender): each refusal
    /// counts, so a write decided twice may count twice. Each is a write a handoff could otherwise have missed.
    /// </summary>
    public long MovedAway { get; init; }
}
