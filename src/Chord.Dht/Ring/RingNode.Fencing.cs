using System.Collections.Concurrent;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// Ownership fencing: a node that turns storing serves the positions it now owns only once the member that answered
/// for them until then (its predecessor: a position's owner is the storing node at or before it) has said that it
/// knows the node is storing, no longer answers for them, and has handed over what it held there.
/// Without it, a position changing hands is answered for a moment by two nodes, each taking itself for the owner: one
/// acceptor too many for the key's register (a quorum of three "positions" could be two, one of them counted twice).
/// </summary>
/// <remarks>
/// <para>The exchange (docs/PROTOCOL-EXTENSIONS.md): the new member whispers <c>[fence, its member entry]</c> to its
/// predecessor; the predecessor merges the entry (from then on it routes those positions to the new member), hands
/// the new member every entry it holds at them (versioned stores, which the new member keeps as hints), and only when
/// all were taken answers with its hello (its directory, so the new member learns any member between them it did not
/// know) and <c>[fenced, epoch]</c>. The new member takes the answer only from the member that is its predecessor once
/// that hello is merged, and only for its current epoch; otherwise it asks its predecessor again. It asks again every
/// <see cref="RingOptions.StabilizeInterval"/> (or attempt timeout, if shorter) until answered, whoever its predecessor
/// is by then.</para>
/// <para>Until then it answers a retrieve for one of its positions as a hint (what it holds decides no read alone),
/// takes versioned stores (its predecessor's handoff, crash repair) and placement copies as hints, and refuses every other write there
/// (prepare, accept, py2p's store, delta) with <see cref="NotServingYet"/>: a proposer counts that position as not
/// answering. A node that knows no other storing
/// member (the first of a ring) serves at once; so does one whose predecessor is a py2p node, which has no register and
/// cannot answer. <see cref="JoinAsync"/> returns once the node serves, or after <see cref="RingOptions.RequestTimeout"/>
/// with the exchange still going on in the background.</para>
/// <para>What it does not cover (DURABILITY.md): a member whose directory lacks both the new node and its predecessor
/// still takes itself for the owner of those positions until membership reaches it.</para>
/// </remarks>
public sealed partial class RingNode
{
    /// <summary>The refusal of a write at a node that does not serve its positions yet (its predecessor has not answered its fence).</summary>
    internal const string NotServingYet = "the owner joined just now and serves its positions once its predecessor has stopped answering for them";

    /// <summary>The refusal of a request by a relay that cannot reach the position's owner (gone, not removed yet); nothing was applied.</summary>
    internal const string OwnerUnreachable = "the position's owner cannot be reached; nobody else answers for it until it is removed from the ring";

    /// <summary>True for a refusal that says the request was applied nowhere and may be sent again (not a refusal by the owner).</summary>
    private static bool AppliedNowhere(Answer answer) => answer.Error is NotServingYet or OwnerUnreachable or MovedAway;

    // True while storing at an epoch whose fence the predecessor answered (or needed none). Written under _selfLock
    // together with _storing and _epoch; read without it on the request path (a stale read errs toward refusing:
    // the flag is cleared in the same lock that sets _storing).
    private volatile bool _serving;

    // Completed (and replaced) by every fenced answer, so that the fence loop looks again at once.
    private TaskCompletionSource _fenceAnswered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// True when this node serves the positions it owns: it is storing and its predecessor has stopped answering for
    /// them and handed over what it held there (see the fencing remarks). A storing node that is not serving yet answers reads there as hints and refuses
    /// writes.
    /// </summary>
    public bool IsServing => _storing && _serving;

    /// <summary>True when requests for the positions this node owns must wait for the fence (storing, not serving yet).</summary>
    private bool AwaitingFence => _storing && !_serving;

    /// <summary>Runs the fence exchange for <paramref name="epoch"/> and waits for it within the request timeout.</summary>
    private async Task FenceAfterJoinAsync(long epoch)
    {
        var fencing = FenceLoopAsync(epoch, _stopping.Token);
        TrackBackground(fencing);
        try
        {
            await fencing.WaitAsync(Options.RequestTimeout, Options.Mesh.TimeProvider);
        }
        catch (TimeoutException)
        {
            RingLog.FencePending(Logger, Id, (_fenceWalk is { } walk && walk.Epoch == epoch ? FenceTarget(walk) : Neighbours(-1).FirstOrDefault())?.Id ?? "none");
        }
    }

    private async Task FenceLoopAsync(long epoch, CancellationToken stop)
    {
        try
        {
            var waitedForHellos = false;
            var walk = new FenceWalk(epoch);
            _fenceWalk = walk;
            while (!stop.IsCancellationRequested && StillAwaitingFence(epoch))
            {
                var answered = Volatile.Read(ref _fenceAnswered).Task;
                var predecessor = FenceTarget(walk);
                if (predecessor is null && !walk.NotServing.IsEmpty)
                {
                    // Every member before us, all the way round, answered that it does not serve yet: the ring's
                    // members joined together (a cluster's first start), and nobody answers for any position.
                    MarkServing(epoch, "no other member serves yet, and every one has stopped answering for its positions");
                    return;
                }

                if (predecessor is null)
                {
                    // No other storing member known. A peer whose hello is still on its way may know some: wait for
                    // those hellos once (bounded), then look again.
                    if (!waitedForHellos && await AwaitPendingHellosAsync(stop))
                    {
                        waitedForHellos = true;
                        continue;
                    }

                    MarkServing(epoch, "no other storing member answers for its positions");
                    return;
                }

                try
                {
                    // Asked again at the stabilize pace: the answer is one frame each way, and either can be lost
                    // (a connection closed as the duplicate of another, a frame dropped).
                    using var attempt = ClockDeadline.Start(Options.Mesh.TimeProvider, FenceRetryInterval, stop);
                    var peer = Mesh.GetPeer(predecessor.Id) ?? await Mesh.ConnectAsync(predecessor.Address, predecessor.Id, attempt.Token);
                    if (BeforeFenceForTest is { } beforeFence)
                    {
                        await beforeFence(peer);
                    }

                    bool speaks;
                    try
                    {
                        speaks = await SpeaksExtensionsAsync(peer, attempt.Token);
                    }
                    catch (OperationCanceledException) when (!stop.IsCancellationRequested && !peer.IsClosed)
                    {
                        speaks = false; // not said yet on a live connection
                    }

                    if (!speaks && KnownPy2p(predecessor.Id))
                    {
                        MarkServing(epoch, "its predecessor is a py2p node");
                        return;
                    }

                    if (!speaks && peer.IsClosed)
                    {
                        // The connection closed before its hello (a duplicate dropped, a reconnect): that says nothing
                        // about what the node speaks. Serving on it let a newcomer take writes while its predecessor
                        // still answered for its positions (a CI run of RingOwnershipTests). Ask again.
                        await Task.Delay(FenceRetryInterval, Options.Mesh.TimeProvider, stop);
                        continue;
                    }

                    // Ours, or not said yet on a live connection (its hello lost to us, or an answer to our ask still on
                    // its way): the fence goes anyway, since a py2p node ignores our sub-flags, and one of ours answers.
                    await peer.WhisperAsync((long)RingSubFlag.Fence, MemberEntry(new RingMember(Id, Mesh.Address, IsStoring: true, epoch)));
                    await answered.WaitAsync(attempt.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or TimeoutException && !stop.IsCancellationRequested)
                {
                    // No answer within the attempt (lost, the handoff still going, or the predecessor is gone): ask
                    // whoever is the predecessor now.
                }
                catch (MeshConnectException)
                {
                    // The predecessor cannot be dialled (gone, not removed yet): not again at once.
                    await Task.Delay(FenceRetryInterval, Options.Mesh.TimeProvider, stop);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException && (stop.IsCancellationRequested || _disposed != 0))
        {
            // Stopping.
        }
    }

    private TimeSpan FenceRetryInterval => Options.AttemptTimeout < Options.StabilizeInterval ? Options.AttemptTimeout : Options.StabilizeInterval;

    private bool StillAwaitingFence(long epoch)
    {
        lock (_selfLock)
        {
            return _storing && _epoch == epoch && !_serving;
        }
    }

    /// <summary>Waits (at most an attempt's time) for the hello of every connected peer that has not sent one; false when none is pending.</summary>
    private async Task<bool> AwaitPendingHellosAsync(CancellationToken stop)
    {
        var pending = Mesh.Peers.Where(p => p.Id is not null && !p.IsClosed && !CapabilityKnown(p.Id)).ToList();
        if (pending.Count == 0)
        {
            return false;
        }

        using var attempt = ClockDeadline.Start(Options.Mesh.TimeProvider, FenceRetryInterval, stop);
        try
        {
            await Task.WhenAll(pending.Select(p => SpeaksExtensionsAsync(p, attempt.Token).AsTask()));
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            // Some never said: decide with what is known.
        }

        return true;
    }

    private void MarkServing(long epoch, string why)
    {
        lock (_selfLock)
        {
            if (!_storing || _epoch != epoch || _serving)
            {
                return;
            }

            _serving = true;
        }

        RingLog.Serving(Logger, Id, why);
    }

    // Members whose fence this node is answering (handing over what it holds at their positions): one at a time each.
    private readonly ConcurrentDictionary<string, byte> _fencesInProgress = new(StringComparer.Ordinal);

    /// <summary>
    /// At the predecessor: a member that turned storing asks us to stop answering for its positions. Merged at once;
    /// answered once every entry we hold at its positions is in its hands, in the background (the handoff's answers
    /// come in on this same connection, whose read loop must not wait for them).
    /// </summary>
    private void HandleFence(MeshPeer from, MsgValue entry)
    {
        if (IgnoreFencesForTest)
        {
            return;
        }

        if (!TryReadMember(entry, out var member) || member.Id != from.Id || !member.IsStoring)
        {
            RingLog.Malformed(Logger, "fence", from.Id ?? "?");
            return;
        }

        // Relayed-news rules apply (a newer epoch wins; a repeat changes nothing), so a late duplicate of an old fence
        // cannot set the member back. Either way our directory then holds it storing at that epoch or newer: from here
        // on, requests for its positions are routed to it.
        MergeMember(member);
        if (!_members.TryGetValue(member.Id, out var known) || known.Epoch < member.Epoch)
        {
            return; // a departure mark refused it: no promise to give
        }

        if (!_fencesInProgress.TryAdd(member.Id, 0))
        {
            return; // the handoff for its last fence is still going; that one answers
        }

        RunInBackground(async () =>
        {
            try
            {
                // What we accepted at its positions while it was away (or before it joined) goes to it first: serving
                // without it, it would answer "nothing here" for keys we hold there, an acceptor that lost its state.
                // Versioned entries only (what a node that does not serve yet takes; py2p's unversioned ones follow
                // in HandOffToAsync once it serves), and placement copies only as HandsOverTo says: a node that serves
                // is the member's interim owner (the fence goes to the first member before it that serves), and sends
                // those it held as the positions' owner, and keeps them.
                // A node that does not serve yet answers for nothing: what it holds was loaded at start (or is on its
                // way through it), not accepted later than what the member loaded, so it goes unmarked, and its answer
                // says it did not serve (the member then asks the member before us too).
                int failed;
                bool serving;
                using (await HandoffGateAsync(member.Id))
                {
                    serving = !AwaitingFence;
                    failed = await MoveEntriesAsync(slot => OwnerOf(new RingPosition(slot.Position).Reduced, null)?.Id == member.Id
                        && _table.TryGetValue(slot, out var held) && held.Version is not null && HandsOverTo(member, held, interimOwner: serving), _stopping.Token, handoff: serving,
                        keepCopies: true);
                }

                if (failed > 0 || from.IsClosed)
                {
                    return; // not all of it went over: no answer; it asks again and we try again
                }

                from.TryEnqueue(HelloMessage()); // before the answer, on the same connection: it learns our directory first
                await from.WhisperAsync((long)RingSubFlag.Fenced, member.Epoch, serving);
            }
            finally
            {
                _fencesInProgress.TryRemove(member.Id, out _);
            }
        });
    }

    /// <summary>At the new member: the answer of the member its fence went to (see <see cref="FenceTarget"/>).</summary>
    private void HandleFenced(MeshPeer from, long epoch, bool serving)
    {
        // Only the member the walk asks now (after the hello that came before this) can speak for our positions; an
        // answer from another, or for another epoch, only wakes the loop to ask again.
        var walk = _fenceWalk;
        if (walk is not null && walk.Epoch == epoch && FenceTarget(walk)?.Id == from.Id)
        {
            if (serving)
            {
                MarkServing(epoch, $"{from.Id}, the first member before it that serves, stopped answering for its positions and handed them over");
            }
            else
            {
                walk.NotServing[from.Id!] = FenceTarget(walk)?.Epoch ?? 0;
            }
        }

        Interlocked.Exchange(ref _fenceAnswered, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>
    /// The member a join's fence goes to: the first member before this node (nearest first) that has not answered that
    /// it does not serve yet itself. Null when every other storing member has (a ring whose members all joined at once).
    /// </summary>
    /// <remarks>
    /// A member's "not serving" holds for the epoch it had then: back at a new epoch (a restart), its directory may
    /// lack this node, and as it serves it takes itself for the owner of our positions, so it is asked again.
    /// </remarks>
    private RingMember? FenceTarget(FenceWalk walk) =>
        Neighbours(-1).FirstOrDefault(m => !(walk.NotServing.TryGetValue(m.Id, out var epoch) && epoch == m.Epoch));

    /// <summary>One join's fence exchange: the members before this node that answered it while not serving themselves, with their epochs.</summary>
    private sealed record FenceWalk(long Epoch)
    {
        public ConcurrentDictionary<string, long> NotServing { get; } = new(StringComparer.Ordinal);
    }

    private volatile FenceWalk? _fenceWalk;

    /// <summary>For tests' failure messages: where this node's fence exchange stands.</summary>
    internal string DescribeFenceForTest()
    {
        var walk = _fenceWalk;
        if (walk is null)
        {
            return "no fence sent";
        }

        var target = FenceTarget(walk);
        var speaks = target is null ? "-" : SpeaksExtensionsKnown(target.Id) ? "ours" : KnownPy2p(target.Id) ? "py2p" : _capabilities.ContainsKey(target.Id) ? "unknown (awaited)" : "unknown";
        var peer = target is null ? null : Mesh.GetPeer(target.Id);
        var connection = peer is null ? "not connected" : $"connected (authenticated: {peer.IsAuthenticated}, introduced: {_introduced.ContainsKey(peer)}, hello asked: {_helloAsked.ContainsKey(peer)}, frames in/out: {peer.FramesIn}/{peer.FramesOut}, outgoing: {peer.IsOutgoing})";
        return $"fence at epoch {walk.Epoch} (now {_epoch}) asks {target?.Id ?? "nobody"} (speaks: {speaks}, {connection}); "
            + $"answered not serving: [{string.Join(", ", walk.NotServing.Keys)}]";
    }

    /// <summary>
    /// What a storing node that is not serving yet answers for one of its positions: a retrieve gets what it holds as a
    /// hint; any write is refused with <see cref="NotServingYet"/>. Null when the node serves.
    /// </summary>
    private Answer? AnswerBeforeFence(PositionRequest request, int hops)
    {
        if (!AwaitingFence)
        {
            return null;
        }

        if (request.Kind == SubFlag.Store && request.Version is not null)
        {
            // A versioned store (the handoff from the predecessor, crash repair): state coming in, taken as a hint (a
            // restored entry), which answers nothing on its own. Refusing it left the node serving without what its
            // predecessor accepted while it was away, for a retry interval or more. A placement copy (a hint by
            // itself) too: refused, it went nowhere, and the node, now its successor's nearest predecessor, would
            // take the successor's positions over after a crash without the copy kept there for that (a
            // crash-profile trace, seed 5073: every position of a key on one node, its copies refused by the
            // restarted predecessor while it was fencing, then the node crashed and the predecessor answered
            // "nothing" for all five).
            return null;
        }

        RingMetrics.RefusedBeforeFence.Add(1);
        if (request.Kind != SubFlag.Retrieve)
        {
            return Answer.Refused(hops, NotServingYet);
        }

        var slot = (request.Method, request.Position.Value);
        return _table.TryGetValue(slot, out var held) && held.Version is not null
            ? new Answer(held.Value, hops, true, null, null, held.Version, held.Key, Versioned: true) { Accepted = held.AcceptedBallot, IsCopy = true }
            : new Answer(MsgValue.Nil, hops, true, null, null, null, null, Versioned: true) { IsCopy = true };
    }
}
