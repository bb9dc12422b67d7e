using System.Collections.Concurrent;
using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>The proposer against a scripted transport: which requests it sends, given which answers come when.</summary>
public sealed class RegisterProposerTests
{
    private static readonly EntryVersion Written = new(7, "writer");

    /// <summary>
    /// A read that met a hint (a restored entry at one position) commits the value again with prepareFirst, so that
    /// the accept makes the hint acceptor state. When the hint's owner is slow, the first three prepare answers are the
    /// other positions', which hold the value as acceptor state: "chosen". Before, that ended the update with no
    /// accept, the hint stayed, and every later read of the key asked all five positions (seen under load in
    /// QuorumFirstReadTests). The update now sends its accept to every position.
    /// </summary>
    [Fact]
    public async Task A_commit_made_to_confirm_hints_sends_its_accept_even_when_the_first_prepare_quorum_holds_no_hint()
    {
        var transport = new ScriptedTransport(slowPosition: 0);
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var update = proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.Keep, deadline.Token, prepareFirst: true);
        await Eventually.UntilAsync(() => transport.Prepared.Count == 4, "four prepare answers");
        transport.ReleaseSlow();
        var outcome = await update.WaitAsync(deadline.Token);

        Assert.False(outcome.Written);
        Assert.Equal(MsgValue.Str("v"), outcome.Current.Value);
        Assert.Contains(0, transport.Accepted); // the slow position, whose hint the commit was for
        Assert.Equal(5, transport.Accepted.Distinct().Count());
    }

    [Fact]
    public async Task A_plain_read_commit_that_finds_the_value_chosen_sends_no_accept()
    {
        var transport = new ScriptedTransport(slowPosition: null);
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var outcome = await proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.Keep, deadline.Token);

        Assert.False(outcome.Written);
        Assert.Empty(transport.Accepted); // one round: the value is committed already
    }

    /// <summary>
    /// Four of a key's positions on node A, one on node B. A accepts the write and crashes before B's answer comes (it
    /// is lost): four yes answers, all from a node that holds nothing any more. The whole-ring simulation found such a
    /// write reported committed, then the positions' new owner answered with the older value. The write must not be
    /// reported committed: it may or may not have landed.
    /// </summary>
    [Fact]
    public async Task Yes_answers_from_a_node_that_crashed_before_the_round_ended_acknowledge_nothing()
    {
        var transport = new TwoNodeTransport();
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(3));

        var update = proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.To(MsgValue.Str("x")), deadline.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => update);
        Assert.True(transport.ACrashed, "the scripted crash did not happen");
    }

    /// <summary>
    /// Four positions on node A, one on node B, which promised another proposer a higher ballot. The first accept gets
    /// four yes answers, all from A, and B's no: every position answered, none is left to wait for. Acknowledged so,
    /// the write would rest on one node; the update prepares above B's promise and commits it on both.
    /// </summary>
    [Fact]
    public async Task A_round_whose_yes_answers_all_come_from_one_of_the_keys_two_nodes_prepares_again_and_reaches_both()
    {
        var transport = new RefusingNodeTransport();
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var outcome = await proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.To(MsgValue.Str("x")), deadline.Token);

        Assert.True(outcome.Written);
        Assert.Equal(MsgValue.Str("x"), transport.HeldAtB);
    }

    /// <summary>Positions 0-3 on node A, 4 on node B, every one a real acceptor; B starts with a promise of 50@Z.</summary>
    private sealed class RefusingNodeTransport : IRegisterTransport
    {
        private readonly StoredEntry?[] _entries = [null, null, null, null, new StoredEntry(MsgValue.Nil, null, null, Promised: new EntryVersion(50, "Z"))];

        public MsgValue HeldAtB
        {
            get
            {
                lock (_entries)
                {
                    return _entries[4]!.Value;
                }
            }
        }

        public string ProposerId => "proposer";

        public TimeProvider Time => TimeProvider.System;

        public string? AcceptorNode(byte[] key, int position) => position < 4 ? "A" : "B";

        public Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken)
        {
            lock (_entries)
            {
                var (updated, reply) = Acceptor.Prepare(_entries[position], ballot, key, floor: 0);
                _entries[position] = updated ?? _entries[position];
                return Task.FromResult<AcceptorReply?>(reply);
            }
        }

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken)
        {
            lock (_entries)
            {
                var (updated, reply) = Acceptor.Accept(_entries[position], ballot, value, version, key, next, floor: 0);
                _entries[position] = updated ?? _entries[position];
                return Task.FromResult<AcceptorReply?>(reply);
            }
        }
    }

    /// <summary>Positions 0-3 on node A, 4 on node B (its accepts' answers are lost); A crashes once it has accepted a value at all four.</summary>
    private sealed class TwoNodeTransport : IRegisterTransport
    {
        private readonly StoredEntry?[] _entries = new StoredEntry?[5];
        private int _acceptedAtA;

        public bool ACrashed => Volatile.Read(ref _acceptedAtA) >= 4;

        public string ProposerId => "proposer";

        public TimeProvider Time => TimeProvider.System;

        public string? AcceptorNode(byte[] key, int position) => position < 4 ? "A" : "B";

        public bool AcceptorAlive(string node) => node != "A" || !ACrashed;

        public Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken)
        {
            if (position < 4 && ACrashed)
            {
                return Task.FromResult<AcceptorReply?>(null);
            }

            lock (_entries)
            {
                var (updated, reply) = Acceptor.Prepare(_entries[position], ballot, key, floor: 0);
                _entries[position] = updated ?? _entries[position];
                return Task.FromResult<AcceptorReply?>(reply);
            }
        }

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken)
        {
            if (position == 4 || ACrashed)
            {
                return Task.FromResult<AcceptorReply?>(null); // B's answer is lost; A is down
            }

            lock (_entries)
            {
                var (updated, reply) = Acceptor.Accept(_entries[position], ballot, value, version, key, next, floor: 0);
                _entries[position] = updated ?? _entries[position];
                if (reply.Ok && !value.IsNil)
                {
                    Interlocked.Increment(ref _acceptedAtA);
                }

                return Task.FromResult<AcceptorReply?>(reply);
            }
        }
    }

    /// <summary>
    /// One position holds a write (version 28) as its own acceptor state; the other four are hints from a node back
    /// from a crash, holding an older value (version 27) that a read re-accepted under ballot 29 just before the crash,
    /// a ballot above the write's 28. The write was committed while the node was down; the prepare builds on it.
    /// </summary>
    [Fact]
    public async Task A_hint_that_re_accepted_an_older_value_under_a_higher_ballot_does_not_replace_a_newer_write()
    {
        var write = new EntryVersion(28, "B");
        var transport = new FixedAnswersTransport(position => position == 0
            ? new AcceptorReply(true, MsgValue.Str("written"), write, new EntryVersion(29, "B"), new EntryVersion(30, "P"))
            : new AcceptorReply(true, MsgValue.Nil, new EntryVersion(27, "A"), new EntryVersion(29, "C"), new EntryVersion(30, "P"), IsCopy: true));
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var outcome = await proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.Keep, deadline.Token);

        Assert.Equal(MsgValue.Str("written"), outcome.Current.Value);
        Assert.Equal(write, outcome.Current.Version);
    }

    /// <summary>
    /// Three positions say yes to an accept only because they hold the proposer's value re-accepted under a later
    /// ballot (another proposer committed it there); two refuse. Acceptances under different ballots make no quorum:
    /// counted, a write could be reported committed while a quorum at one ballot chose another value.
    /// </summary>
    [Fact]
    public async Task Yes_answers_under_a_later_ballot_than_the_rounds_make_no_quorum()
    {
        var later = new EntryVersion(99, "Z");
        var transport = new FixedAnswersTransport(
            _ => new AcceptorReply(true, MsgValue.Nil, null, EntryVersion.Zero, EntryVersion.Zero),
            position => position < 3
                ? new AcceptorReply(true, MsgValue.Nil, null, later, new EntryVersion(100, "Z"))
                : new AcceptorReply(false, MsgValue.Nil, null, EntryVersion.Zero, new EntryVersion(100, "Z")));
        var proposer = new RegisterProposer(transport, new RegisterSettings(), new Random(1));
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => proposer.UpdateAsync("key"u8.ToArray(), static _ => RegisterChange.To(MsgValue.Str("x")), deadline.Token));
    }

    /// <summary>Answers every prepare with a fixed reply per position, and every accept likewise (default: taken).</summary>
    private sealed class FixedAnswersTransport(Func<int, AcceptorReply> prepared, Func<int, AcceptorReply>? accepted = null) : IRegisterTransport
    {
        public string ProposerId => "P";

        public TimeProvider Time => TimeProvider.System;

        public Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken) =>
            Task.FromResult<AcceptorReply?>(prepared(position) with { Promised = ballot });

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken) =>
            Task.FromResult<AcceptorReply?>(accepted?.Invoke(position) ?? new AcceptorReply(true, MsgValue.Nil, null, ballot, next ?? ballot));
    }

    /// <summary>Five acceptors that all hold "v" at <see cref="Written"/>; one of them answers its prepare only when released.</summary>
    private sealed class ScriptedTransport(int? slowPosition) : IRegisterTransport
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentBag<int> Prepared { get; } = [];

        public ConcurrentBag<int> Accepted { get; } = [];

        public string ProposerId => "proposer";

        public TimeProvider Time => TimeProvider.System;

        public void ReleaseSlow() => _release.TrySetResult();

        public async Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken)
        {
            if (position == slowPosition)
            {
                await _release.Task.WaitAsync(cancellationToken);
            }

            Prepared.Add(position);
            return new AcceptorReply(true, MsgValue.Str("v"), Written, Written, ballot, IsCopy: position == slowPosition);
        }

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken)
        {
            Accepted.Add(position);
            return Task.FromResult<AcceptorReply?>(new AcceptorReply(true, MsgValue.Nil, null, ballot, next ?? ballot));
        }
    }
}
