using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The acceptor rule for a versioned store (repair, a copy) that meets a promise higher than its version at a position
/// taken over from a crashed member within the repair time, holding nothing but a promise or an older hint: a reader
/// prepared the position first (its answer there was a gap). The value is taken (the caller marks it a hint) and the
/// promise stays; never below the node's ballot floor; elsewhere, and at a position that holds a value of its own, the
/// promise refuses as ever.
/// </summary>
public class AcceptorRepairTests
{
    private static readonly byte[] Key = "k"u8.ToArray();
    private static readonly EntryVersion Repaired = new(3, "writer");
    private static readonly EntryVersion ReadersPromise = new(50, "reader");

    private static StoredEntry PromiseOnly => new(MsgValue.Nil, null, Key, Promised: ReadersPromise);

    [Fact]
    public void A_repaired_value_is_taken_at_a_taken_over_position_that_holds_only_a_promise_and_the_promise_stays()
    {
        var (learnt, reply) = Acceptor.Accept(PromiseOnly, Repaired, MsgValue.Str("kept"), Repaired, Key, next: null, floor: 0, learn: true, takenOver: true);

        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("kept"), learnt!.Value);
        Assert.Equal(Repaired, learnt.Version);
        Assert.Equal(ReadersPromise, learnt.PromisedBallot);

        // The promise still refuses a proposer's accept below it.
        Assert.False(Acceptor.Accept(learnt, new EntryVersion(40, "other"), MsgValue.Str("x"), new EntryVersion(40, "other"), Key, next: null, floor: 0).Reply.Ok);
    }

    [Fact]
    public void A_proposers_accept_below_the_promise_is_still_refused_at_a_position_that_holds_only_a_promise()
    {
        var lower = new EntryVersion(40, "other");

        Assert.False(Acceptor.Accept(PromiseOnly, lower, MsgValue.Str("x"), lower, Key, next: null, floor: 0).Reply.Ok);
    }

    [Fact]
    public void A_repaired_value_below_the_ballot_floor_is_refused_even_at_a_position_that_holds_only_a_promise()
    {
        // The floor was raised past a collected tombstone at 10: an older value must not come back.
        var (unchanged, reply) = Acceptor.Accept(PromiseOnly, Repaired, MsgValue.Str("deleted long ago"), Repaired, Key, next: null, floor: 10, learn: true, takenOver: true);

        Assert.False(reply.Ok);
        Assert.Null(unchanged);
    }

    [Fact]
    public void A_position_that_holds_a_value_refuses_an_older_repaired_value_under_a_higher_promise()
    {
        var held = new StoredEntry(MsgValue.Str("held"), new EntryVersion(2, "someone"), Key, Promised: ReadersPromise);

        var (unchanged, reply) = Acceptor.Accept(held, Repaired, MsgValue.Str("kept"), Repaired, Key, next: null, floor: 0, learn: true, takenOver: true);

        Assert.False(reply.Ok);
        Assert.Null(unchanged);
    }

    [Fact]
    public void Outside_a_takeover_a_promise_only_position_refuses_a_repaired_value_below_its_promise()
    {
        // There a proposer may have counted the position's "nothing" under that promise.
        var (unchanged, reply) = Acceptor.Accept(PromiseOnly, Repaired, MsgValue.Str("kept"), Repaired, Key, next: null, floor: 0, learn: true);

        Assert.False(reply.Ok);
        Assert.Null(unchanged);
    }

    [Fact]
    public void A_newer_repaired_value_replaces_an_older_hint_under_the_promise_and_an_older_one_does_not()
    {
        // Repair brings each holder's newest, in any order: a stale one can come first.
        var stale = new StoredEntry(MsgValue.Str("stale"), Repaired, Key, Promised: ReadersPromise, IsRestored: true);
        var newer = new EntryVersion(7, "writer");

        var (learnt, reply) = Acceptor.Accept(stale, newer, MsgValue.Str("newer"), newer, Key, next: null, floor: 0, learn: true, takenOver: true);
        Assert.True(reply.Ok);
        Assert.Equal(MsgValue.Str("newer"), learnt!.Value);
        Assert.Equal(ReadersPromise, learnt.PromisedBallot);

        var held = learnt with { IsRestored = true };
        var (unchanged, older) = Acceptor.Accept(held, Repaired, MsgValue.Str("stale"), Repaired, Key, next: null, floor: 0, learn: true, takenOver: true);
        Assert.False(older.Ok);
        Assert.Null(unchanged);
    }
}
