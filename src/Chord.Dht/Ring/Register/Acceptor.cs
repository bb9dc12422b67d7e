using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Register;

/// <summary>
/// The acceptor rules of a key's CASPaxos register at one position, as pure functions of what the position holds
/// (<see cref="StoredEntry"/>): no I/O, no clock, so the ring and the deterministic simulation run the same rules.
/// </summary>
/// <remarks>
/// <para>Invariant: the promised ballot is never below the accepted one, and neither ever goes down.</para>
/// <para><b>Prepare(b)</b>: refused when b is below the promise; otherwise the acceptor promises b and answers with the
/// value, its version and the ballot it was accepted under. Equal to the promise is allowed: it is the same
/// proposer's repeat, or the next ballot a proposer asked for on its last accept (the sticky proposer).</para>
/// <para><b>Accept(b, v)</b>: a repeat of the accepted ballot is acknowledged again, even under a higher promise made
/// since when the position's own acceptor state holds it (it carries the same value: a ballot has one value, and the
/// accept happened before that promise); a proposer's own new value (version b) held here re-accepted under a later
/// ballot is acknowledged with that later ballot (it landed, but counts toward no quorum at b); otherwise refused when
/// b is below the promise, and the value is taken when it is not. A versioned store (learn) of a value newer than the
/// one held is taken under a promise loaded at start, which stays; and, at a position taken over from a crashed member
/// within the repair time, under any promise when the position holds nothing but hints (the promise stays, the value is
/// a hint). An accept may ask the
/// acceptor to promise the proposer's next ballot at once, which is what lets that proposer's next write skip its
/// prepare (one round).</para>
/// <para><b>Floor.</b> A node that drops a key's state (a collected tombstone) raises its floor above that state's
/// ballots, and a position without state refuses ballots at or below the floor, so no proposer that prepared before
/// the drop can get a lower-ballot value accepted after it.</para>
/// </remarks>
internal static class Acceptor
{
    /// <summary>A writer id above every node id (base58 digits are letters and digits, all below '~').</summary>
    private const string AboveEveryWriter = "~";

    /// <summary>The ballot a position without state refuses at and below.</summary>
    public static EntryVersion FloorBallot(long floor) => floor > 0 ? new EntryVersion(floor, AboveEveryWriter) : EntryVersion.Zero;

    /// <summary>The promise a position stands by: its entry's, or the node's floor when it holds nothing.</summary>
    public static EntryVersion PromisedOf(StoredEntry? entry, long floor) => entry?.PromisedBallot ?? FloorBallot(floor);

    /// <summary>Phase 1. Returns the entry to keep (null: unchanged) and the answer.</summary>
    public static (StoredEntry? Updated, AcceptorReply Reply) Prepare(StoredEntry? entry, EntryVersion ballot, byte[]? key, long floor)
    {
        var promised = PromisedOf(entry, floor);
        if (ballot < promised)
        {
            return (null, Refused(entry, promised));
        }

        StoredEntry? updated = null;
        if (entry is null)
        {
            updated = new StoredEntry(MsgValue.Nil, null, key, Promised: ballot);
        }
        else if (ballot > entry.PromisedBallot || (entry.Key is null && key is not null) || entry.PromiseFromBeforeStart)
        {
            // A promise made now: also the one a loaded promise becomes once a proposer prepares here again.
            updated = entry with { Promised = ballot > entry.PromisedBallot ? ballot : entry.Promised, Key = entry.Key ?? key, PromiseFromBeforeStart = false };
        }

        var held = updated ?? entry!;
        return (updated, new AcceptorReply(true, held.Value, held.Version, held.AcceptedBallot, held.PromisedBallot, held.IsHint));
    }

    /// <summary>
    /// Phase 2. <paramref name="version"/> is the value's own version (the ballot that last changed it), never above
    /// <paramref name="ballot"/>; <paramref name="next"/>, when given, is promised as well once the value is accepted.
    /// Returns the entry to keep (null: unchanged) and the answer.
    /// </summary>
    /// <param name="entry">What the position holds.</param>
    /// <param name="ballot">The accept's ballot.</param>
    /// <param name="value">The value.</param>
    /// <param name="version">The value's version.</param>
    /// <param name="key">The original key.</param>
    /// <param name="next">The proposer's next ballot, to promise as well.</param>
    /// <param name="floor">The node's ballot floor.</param>
    /// <param name="takenOver">
    /// The position is in a range this node took over from a crashed member within the repair time: a prepare's answer
    /// there was a gap (nothing known yet), which no proposer counted.
    /// </param>
    /// <param name="learn">
    /// A versioned store (repair, handoff, a copy): a value some proposer had accepted at this very ballot, taken when
    /// nothing newer is promised here. A proposer's accept (<c>false</c>) is stricter: it is taken only under a promise
    /// of exactly its ballot (a prepare, or the next ballot of this proposer's last accept), so a position that lost its
    /// state (a new owner, a crash without a disk) refuses a sticky proposer's one-round write until it is prepared
    /// again, and that prepare sees what the other positions hold.
    /// </param>
    public static (StoredEntry? Updated, AcceptorReply Reply) Accept(
        StoredEntry? entry, EntryVersion ballot, MsgValue value, EntryVersion version, byte[]? key, EntryVersion? next, long floor, bool learn = false,
        bool takenOver = false)
    {
        var promised = PromisedOf(entry, floor);
        if (version > ballot || ballot == EntryVersion.Zero)
        {
            return (null, Refused(entry, promised));
        }

        // A repeat of the ballot this position accepted is acknowledged whatever it promised since: the accept did
        // happen here, before any later promise, and saying no would tell its proposer that its value certainly did not
        // land here (the whole-ring simulation found a compare-and-set reported "not swapped" whose value a later
        // proposer then committed: the first accept's answer was lost, its retry met the next ballot it had itself
        // asked this position to promise, and was refused).
        var isRepeat = entry is not null && entry.AcceptedBallot == ballot && entry.Version is not null;
        if (!isRepeat && !learn && version == ballot && entry is { Version: { } held } && held == version && entry.AcceptedBallot > ballot)
        {
            // The proposer's own new value (its version is its ballot) is what this position holds, re-accepted since
            // under a later ballot (another proposer found it and committed it): it landed. Said no, the proposer
            // would take it for certainly not landed and decide again on a newer value (the crash-profile trace of
            // seed 6306: a compare-and-set reported "not swapped" whose value another proposer had committed, its
            // retried accept arriving after that commit). Nothing changes here.
            return (null, new AcceptorReply(true, MsgValue.Nil, null, entry.AcceptedBallot, entry.PromisedBallot));
        }

        // A versioned store of a value newer than what the position holds is taken under a promise loaded at start:
        // such a store is what the position's interim owner accepted while this node was down (its handoff, or
        // repair), and that promise, made before, says nothing about it. Refused, the value was lost: the interim
        // owner drops what it handed off (the crash-profile trace of seed 5013). The promise stays as it was.
        // Likewise at a position taken over from a crashed member within the repair time that holds only a promise, or
        // only a hint older than this store: a read prepared it (to commit what it found) before repair brought the
        // value the key's other holders kept, and its answer there was a gap, which no proposer counted. Refused,
        // repair was kept out for good: every later prepare promised higher still, and the position answered "nothing"
        // once its repair time ran out (TakeoverTests, 1 run in 10 under load). Taken, it is a hint (marked by the
        // caller) under the promise it had, which no lower ballot passes; a newer store replaces an older hint (repair
        // brings each holder's newest in any order); never below the node's ballot floor. Outside that window a
        // position's "nothing" may have been counted by a proposer, and its promise refuses as ever.
        var gapLearns = learn && takenOver && entry is not null && ballot < promised && ballot > FloorBallot(floor)
            && (entry.IsPromiseOnly || (entry.IsHint && entry.Version is { } hinted && version > hinted));
        var underOldPromise = gapLearns || (learn && entry is { PromiseFromBeforeStart: true } && ballot > entry.AcceptedBallot && ballot < promised);
        // The repeat goes past a higher promise only at the position's own acceptor state: a hint (a copy, an entry
        // from repair) may hold that ballot without this position ever having accepted it.
        var ownRepeat = isRepeat && !entry!.IsHint;
        if (!ownRepeat && ballot < promised && !underOldPromise)
        {
            return (null, Refused(entry, promised));
        }

        if (underOldPromise)
        {
            var learnt = new StoredEntry(value, version, key ?? entry!.Key, Accepted: ballot == version ? null : ballot, Promised: entry!.PromisedBallot,
                PromiseFromBeforeStart: entry.PromiseFromBeforeStart);
            return (learnt, new AcceptorReply(true, MsgValue.Nil, null, learnt.AcceptedBallot, learnt.PromisedBallot));
        }

        if (!learn && !isRepeat && (entry is null || entry.PromisedBallot != ballot || entry.PromiseFromBeforeStart))
        {
            // No promise of this ballot here: the proposer did not prepare this position (or it forgot), or the
            // promise dates from before this node's restart, when other owners may have promised higher since.
            return (null, Refused(entry, promised));
        }

        if (entry is not null && entry.AcceptedBallot == ballot && entry.Version is not null)
        {
            // A repeat (a duplicated message, a retry, a repair of the same accept): nothing new but the promise. It
            // confirms nothing: a hint (a copy, a restored entry) stays a hint. A repeat can be an accept from long ago,
            // delayed or duplicated on the way, reaching a position that took its state from repair after a newer
            // ballot was accepted at its previous owner; taken as this acceptor's own, that old value could make a
            // quorum with two positions that missed the newer write (with fencing in, the crash profile of
            // RingSimulationTests failed 8 of 450 seeds while repeats confirmed hints, 2 of 300 once they did not).
            // A hint becomes acceptor state when a proposer accepts a new ballot here (a read commits it:
            // ConfirmHintsInBackground).
            var raise = next is { } n && n > entry.PromisedBallot;
            var kept = raise ? entry with { Promised = next } : null;
            var now = kept ?? entry;
            return (kept, new AcceptorReply(true, MsgValue.Nil, null, now.AcceptedBallot, now.PromisedBallot));
        }

        var updated = new StoredEntry(value, version, key ?? entry?.Key,
            Accepted: ballot == version ? null : ballot,
            Promised: next is { } p && p > ballot ? p : null);
        return (updated, new AcceptorReply(true, MsgValue.Nil, null, updated.AcceptedBallot, updated.PromisedBallot));
    }

    private static AcceptorReply Refused(StoredEntry? entry, EntryVersion promised) =>
        new(false, MsgValue.Nil, null, entry?.AcceptedBallot ?? EntryVersion.Zero, promised);
}
