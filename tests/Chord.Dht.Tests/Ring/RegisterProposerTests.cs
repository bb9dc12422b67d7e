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
