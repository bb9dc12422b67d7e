using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The acceptor rules for what a node loads from its data directory: its promise was made before it went down, while
/// other owners answered for its positions, so no sticky proposer's one-round accept is taken under it until a prepare
/// renews it; it still refuses every lower ballot.
/// </summary>
public class AcceptorRestartTests
{
    private static readonly byte[] Key = "k"u8.ToArray();
    private static readonly EntryVersion Accepted = new(5, "A");
    private static readonly EntryVersion Next = new(6, "A");

    /// <summary>What a position holds after proposer A's write at ballot 5 that asked for 6 as its next ballot.</summary>
    private static StoredEntry AfterStickyWrite(bool loaded) =>
        new(MsgValue.Str("old"), Accepted, Key, Promised: Next, PromiseFromBeforeStart: loaded);

    [Fact]
    public void A_repeat_of_the_accepted_ballot_is_acknowledged_under_the_next_ballot_it_promised()
    {
        // Proposer A's write at 5 asked for 6 as its next ballot; its first answer was lost and it sends the same
        // accept again. A "no" would tell A that its value certainly did not land here.
        var (unchanged, reply) = Acceptor.Accept(AfterStickyWrite(loaded: false), Accepted, MsgValue.Str("old"), Accepted, Key, next: Next, floor: 0);

        Assert.True(reply.Ok);
        Assert.Null(unchanged); // nothing new to keep
        Assert.Equal(Accepted, reply.Accepted);
    }

    [Fact]
    public void A_late_accept_of_a_value_the_position_holds_re_accepted_under_a_later_ballot_is_acknowledged()
    {
        // Proposer A wrote "mine" at 5 (version 5); its answer was lost; proposer B found the value and committed it
        // again at 8. A's retried accept arrives now: its value is here, so it landed.
        var reaccepted = new StoredEntry(MsgValue.Str("mine"), Accepted, Key, Accepted: new EntryVersion(8, "B"), Promised: new EntryVersion(9, "B"));

        var (unchanged, reply) = Acceptor.Accept(reaccepted, Accepted, MsgValue.Str("mine"), Accepted, Key, next: Next, floor: 0);

        Assert.True(reply.Ok);
        Assert.Null(unchanged);

        // Another value under an old ballot is still refused.
        Assert.False(Acceptor.Accept(reaccepted, new EntryVersion(6, "C"), MsgValue.Str("x"), new EntryVersion(6, "C"), Key, next: null, floor: 0).Reply.Ok);
    }

    [Fact]
    public void A_repeat_is_acknowledged_under_a_higher_promise_to_another_proposer_and_changes_nothing()
    {
        var promisedToB = AfterStickyWrite(loaded: false) with { Promised = new EntryVersion(9, "B") };

        var (unchanged, reply) = Acceptor.Accept(promisedToB, Accepted, MsgValue.Str("old"), Accepted, Key, next: Next, floor: 0);

        Assert.True(reply.Ok);
        Assert.Null(unchanged);
        Assert.Equal(new EntryVersion(9, "B"), reply.Promised); // B's promise stands

        // A new value under that old ballot is still refused (a ballot below the promise that was not accepted here).
        Assert.False(Acceptor.Accept(promisedToB, new EntryVersion(5, "C"), MsgValue.Str("x"), new EntryVersion(5, "C"), Key, next: null, floor: 0).Reply.Ok);
    }

    [Fact]
    public void A_handed_off_newer_value_is_taken_under_a_promise_loaded_at_start_which_stays()
    {
        // Loaded at start: the value at 25 and a promise of 26@Z made before the crash. While the node was down, its
        // interim owner committed a write at 26@B (below that promise, which it never knew) and now hands it over.
        var loaded = new StoredEntry(MsgValue.Str("old"), new EntryVersion(25, "A"), Key, Promised: new EntryVersion(26, "Z"), PromiseFromBeforeStart: true);
        var handedOff = new EntryVersion(26, "B");

        var (learnt, reply) = Acceptor.Accept(loaded, handedOff, MsgValue.Str("new"), handedOff, Key, next: null, floor: 0, learn: true);

        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("new"), learnt!.Value);
        Assert.Equal(new EntryVersion(26, "Z"), learnt.PromisedBallot);
        Assert.True(learnt.PromiseFromBeforeStart);

        // A proposer's accept under that ballot is still refused, and so is a store of a value no newer than the one held.
        Assert.False(Acceptor.Accept(loaded, handedOff, MsgValue.Str("new"), handedOff, Key, next: null, floor: 0).Reply.Ok);
        Assert.False(Acceptor.Accept(loaded, new EntryVersion(24, "B"), MsgValue.Str("older"), new EntryVersion(24, "B"), Key, next: null, floor: 0, learn: true).Reply.Ok);
    }

    [Fact]
    public void A_one_round_accept_is_taken_under_a_promise_made_since_start()
    {
        var (updated, reply) = Acceptor.Accept(AfterStickyWrite(loaded: false), Next, MsgValue.Str("new"), Next, Key, next: new EntryVersion(7, "A"), floor: 0);

        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("new"), updated!.Value);
    }

    [Fact]
    public void A_one_round_accept_under_a_loaded_promise_is_refused_until_a_prepare_renews_it()
    {
        var loaded = AfterStickyWrite(loaded: true);

        var (refusedEntry, refused) = Acceptor.Accept(loaded, Next, MsgValue.Str("new"), Next, Key, next: null, floor: 0);
        Assert.False(refused.Ok);
        Assert.Null(refusedEntry); // unchanged
        Assert.Equal(Next, refused.Promised);

        // The proposer prepares again (here at the same ballot): a fresh promise, and then its accept is taken.
        var (prepared, promise) = Acceptor.Prepare(loaded, Next, Key, floor: 0);
        Assert.True(promise.Ok);
        Assert.False(prepared!.PromiseFromBeforeStart);
        Assert.Equal(Next, prepared.PromisedBallot);

        var (accepted, reply) = Acceptor.Accept(prepared, Next, MsgValue.Str("new"), Next, Key, next: null, floor: 0);
        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("new"), accepted!.Value);
        Assert.False(accepted.PromiseFromBeforeStart);
    }

    [Fact]
    public void A_loaded_promise_still_refuses_lower_ballots_and_takes_a_repaired_newer_value()
    {
        var loaded = AfterStickyWrite(loaded: true);

        Assert.False(Acceptor.Prepare(loaded, new EntryVersion(5, "B"), Key, floor: 0).Reply.Ok);
        Assert.False(Acceptor.Accept(loaded, new EntryVersion(5, "B"), MsgValue.Str("x"), new EntryVersion(5, "B"), Key, next: null, floor: 0).Reply.Ok);
        Assert.False(Acceptor.Accept(loaded, new EntryVersion(7, "B"), MsgValue.Str("y"), new EntryVersion(7, "B"), Key, next: null, floor: 0).Reply.Ok);

        // What the interim owner accepted meanwhile, handed back (a versioned store): learnt over the loaded state.
        var (learnt, reply) = Acceptor.Accept(loaded, new EntryVersion(9, "B"), MsgValue.Str("newer"), new EntryVersion(9, "B"), Key, next: null, floor: 0, learn: true);
        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("newer"), learnt!.Value);
    }
}
