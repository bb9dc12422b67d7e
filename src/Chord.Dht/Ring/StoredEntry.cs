using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>What an owner holds at one position: the value, and the acceptor state of the key's register there.</summary>
/// <param name="Value">The value; nil is a tombstone (a versioned delete) or, without a version, nothing yet (a promise only).</param>
/// <param name="Version">
/// The version of the value: the ballot under which it was last changed. Null when a py2p node wrote it (py2p has
/// no versions) or when the position holds only a promise.
/// </param>
/// <param name="Key">The original key, so any holder can recompute the other four positions; null from py2p.</param>
/// <param name="Accepted">
/// The ballot of the accept that put the value here, when it is later than <paramref name="Version"/> (a proposer
/// re-accepted an unchanged value to commit it); null means the same as the version.
/// </param>
/// <param name="Promised">The highest ballot this acceptor promised (prepare, or the next ballot an accept asked for); null: none beyond the accepted one.</param>
/// <param name="IsCopy">
/// A placement copy (or the entry a copy left when this node took its position over): a hint of the value, not the
/// acceptor's own state. It may be older than what the position's owner accepted since, so readers and proposers that
/// meet one wait for every position's answer and take the newest, as for a position that holds nothing.
/// </param>
/// <param name="IsRestored">
/// Put here by a versioned store (crash repair, handoff, anti-entropy), not by a proposer's accept: a value some
/// proposer accepted somewhere, possibly older than one committed since (a repair that brought the old value before
/// the new one). Answered as a hint, like a copy, so no read decides on it without all five positions' answers; the
/// next accept of a proposer here makes it acceptor state again. Kept in memory only, as the copy mark; every
/// versioned entry a node loads from its data directory at start is restored too (its positions may have accepted
/// newer values at other owners while it was down).
/// </param>
/// <param name="PromiseFromBeforeStart">
/// The promise was loaded from the data directory, not made since this node started: while the node was down its
/// positions had other owners, which may have promised higher ballots to other proposers. Such a promise still
/// refuses every lower ballot, but no proposer's one-round accept is taken under it: the proposer prepares again
/// (a prepare here makes a fresh promise and clears the mark). Kept in memory only.
/// </param>
/// <param name="HandedBack">
/// The entry replaced what this node loaded at start with what its interim owner accepted while it was away (the
/// fence's handoff): a later handoff of the same position goes by the ordinary rules, newer versions winning, and never
/// replaces it "whatever the ballots" again. Kept in memory only.
/// </param>
internal sealed record StoredEntry(
    MsgValue Value, EntryVersion? Version, byte[]? Key, EntryVersion? Accepted = null, EntryVersion? Promised = null, bool IsCopy = false, bool IsRestored = false,
    bool PromiseFromBeforeStart = false, bool HandedBack = false)
{
    /// <summary>True when readers and proposers must not count this entry as the position's own acceptor state.</summary>
    public bool IsHint => IsCopy || IsRestored;

    /// <summary>
    /// This entry as a node holds it once it has loaded it from its data directory at start: a versioned value is a hint
    /// (restored) and the promise is from before the start (see the two marks). py2p's unversioned entries keep py2p's rule.
    /// </summary>
    public StoredEntry AsLoadedAtStart() => this with { IsRestored = Version is not null, PromiseFromBeforeStart = true };

    /// <summary>True for a tombstone: a delete with its version.</summary>
    public bool IsTombstone => Value.IsNil && Version is not null;

    /// <summary>True when the position holds a value (not a tombstone, not a bare promise).</summary>
    public bool HasValue => !Value.IsNil;

    /// <summary>True when the entry holds only a promise: no value has been accepted here.</summary>
    public bool IsPromiseOnly => Value.IsNil && Version is null;

    /// <summary>The ballot of the accepted value; zero for py2p's unversioned values and for bare promises.</summary>
    public EntryVersion AcceptedBallot => Accepted ?? Version ?? EntryVersion.Zero;

    /// <summary>The ballot below which this acceptor refuses prepares and accepts (never below the accepted one).</summary>
    public EntryVersion PromisedBallot => Promised is { } promised && promised > AcceptedBallot ? promised : AcceptedBallot;
}
