using System.Collections.Concurrent;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Register;

/// <summary>
/// The proposer side of the per-key CASPaxos register (Rystsov, 2018): an update is a prepare to the key's five
/// acceptors, the change applied to the newest value a quorum reports, and an accept of the result under the same
/// ballot. One proposer per node serves every key; it keeps, per key, the ballot its last accept asked the
/// acceptors to promise next, so the node's next update of that key is one round (accept only).
/// </summary>
/// <remarks>
/// <para><b>Ballots</b> are <see cref="EntryVersion"/>s (counter, proposer id). A refused round learns the highest
/// promise and the next one goes above it, after a random pause that breaks duels between proposers.</para>
/// <para><b>Versions.</b> A value's version is the ballot that changed it; an update that keeps the value commits it
/// unchanged, version included, so reading never changes a key's ETag.</para>
/// <para><b>Retries never apply a change twice.</b> When an accept of ours may have landed and a later prepare of the
/// same update finds that value, the update is done: it commits it and reports it written.</para>
/// <para><b>Timeouts</b> come from the caller's token (the ring's request deadline). A cancelled update throws
/// <see cref="OperationCanceledException"/>; its write may or may not have been committed.</para>
/// </remarks>
internal sealed class RegisterProposer
{
    private readonly ConcurrentDictionary<byte[], KeyState> _keys = new(ByteArrayComparer.Instance);
    private readonly IRegisterTransport _transport;
    private readonly RegisterSettings _settings;
    private readonly Random _random;
    private readonly Lock _randomLock = new();
    private long _oneRoundWrites;
    private long _fullRounds;
    private long _conflicts;

    public RegisterProposer(IRegisterTransport transport, RegisterSettings settings, Random? random = null)
    {
        _transport = transport;
        _settings = settings;
        _random = random ?? new Random();
    }

    /// <summary>Updates committed in one round (the sticky ballot held).</summary>
    public long OneRoundWrites => Interlocked.Read(ref _oneRoundWrites);

    /// <summary>Prepare rounds run (first updates of a key here, and after conflicts).</summary>
    public long FullRounds => Interlocked.Read(ref _fullRounds);

    /// <summary>Rounds refused by a higher ballot or short of a quorum.</summary>
    public long Conflicts => Interlocked.Read(ref _conflicts);

    /// <summary>Forgets the sticky ballot of a key (its next update prepares first).</summary>
    public void Forget(byte[] key) => _keys.TryRemove(key, out _);

    /// <summary>
    /// Applies <paramref name="change"/> to the key's committed value, atomically: the change is decided on the value
    /// that is current when it commits. Updates of one key from this proposer run one at a time.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="change">Decides the new value from the committed one.</param>
    /// <param name="cancellationToken">The deadline.</param>
    /// <param name="blind">
    /// Rerunning the change on a newer value can never apply it twice (it checks a version or an ETag and keeps the
    /// value otherwise), so after an accept of its own that may have landed it is rerun rather than reported as "may or
    /// may not have been applied". Not for a plain set: one that may have been seen and then replaced must not be
    /// written again (the simulation finds the non-linearizable history that makes).
    /// </param>
    /// <param name="prepareFirst">
    /// Prepare even when this proposer holds the key's next ballot: a prepare reaches every position, including those
    /// that never promised that ballot (a restored entry, a copy), so the accept that follows makes them acceptor state.
    /// </param>
    public async Task<RegisterOutcome> UpdateAsync(byte[] key, Func<VersionedValue, RegisterChange> change, CancellationToken cancellationToken, bool blind = false, bool prepareFirst = false)
    {
        var state = _keys.GetOrAdd(key, static _ => new KeyState());
        var progress = new Progress();
        await state.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (prepareFirst && state.Next is { } unused)
            {
                state.Lose(unused); // the next prepare goes above it; the ballot is never sent
            }

            return await RunAsync(key, state, change, progress, blind, prepareFirst, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && e is not RegisterTimeoutException)
        {
            throw new RegisterTimeoutException(progress.BestAccepts, progress.MayHaveLanded, cancellationToken);
        }
        finally
        {
            state.Gate.Release();
            Trim();
        }
    }

    private async Task<RegisterOutcome> RunAsync(byte[] key, KeyState state, Func<VersionedValue, RegisterChange> change, Progress progress, bool blind, bool confirmHints, CancellationToken cancellationToken)
    {
        List<EntryVersion>? ourWrites = null; // ballots under which this update sent a changed value
        VersionedValue? decidedOn = null;
        var mayHaveLanded = false; // an accept of a change of ours may have been taken somewhere
        var quorumRounds = 0; // prepare and accept rounds sent, what the outcome reports
        var conflicts = 0; // rounds of this update refused or short of a quorum: the backoff grows with them
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (state.Next is { } sticky)
            {
                // One round: the acceptors promised `sticky` when they accepted our last write of this key.
                var before = new VersionedValue(state.Value, state.Version);
                var decision = change(before);
                var (value, version) = decision.Write ? (decision.Value, sticky) : (before.Value, before.Version);
                if (decision.Write)
                {
                    (ourWrites ??= []).Add(sticky);
                    decidedOn = before;
                }

                // A ballot carries one value: consume it before it goes out, so that no later update (after a
                // cancellation, say) can send another value under it.
                state.Lose(sticky);
                var following = EntryVersion.After(sticky, _transport.ProposerId);
                quorumRounds++;
                progress.MayHaveLanded |= decision.Write; // in flight: a deadline that ends the round cannot tell
                var sent = _transport.AcceptAll(key, sticky, value, version, following, cancellationToken);
                var accepted = await CollectAsync(i => sent[i],
                    _settings.AcceptQuorum, waitForEmpty: false, cancellationToken, settle: decision.Write, spread: AcceptorNodes(key)).ConfigureAwait(false);
                progress.Saw(accepted.Ok.Count);
                if (Landed(accepted, sticky))
                {
                    state.Commit(following, value, version);
                    Interlocked.Increment(ref _oneRoundWrites);
                    _transport.Committed(key, value, version);

                    return new RegisterOutcome(decision.Write, before, new VersionedValue(value, version), quorumRounds);
                }

                // Another proposer got in (or too few answered): prepare above what the refusals named.
                mayHaveLanded |= decision.Write && accepted.MayHaveLanded;
                progress.MayHaveLanded = mayHaveLanded;
                Interlocked.Increment(ref _conflicts);
                conflicts++; // no pause: one refusal of a sticky ballot is a single other writer, not yet a duel
                state.Lose(accepted.Highest);
                continue;
            }

            Interlocked.Increment(ref _fullRounds);
            // From the third conflict on, prepare some counters beyond the highest seen: a sticky proposer writing the
            // key in one round per write moves its promise on by one per write, and a prepare just above what it
            // promised when we heard of it is already below its promise when it arrives (starvation, seen in the
            // simulation). Not at once: skipping at the first or second conflict cut into other writers' rounds and
            // gave more "may or may not" outcomes in the calm profile.
            var ballot = EntryVersion.Beyond(state.Highest, _transport.ProposerId, Math.Min(Math.Max(conflicts - 2, 0), MaxSkip));
            state.See(ballot); // never prepared twice, whatever happens to this round
            quorumRounds++;
            var nodes = AcceptorNodes(key);
            var promises = await CollectAsync(i => _transport.PrepareAsync(key, i, ballot, cancellationToken),
                _settings.PrepareQuorum, waitForEmpty: true, cancellationToken, spread: nodes, spreadGates: false).ConfigureAwait(false);
            state.See(promises.Highest);
            if (promises.Ok.Count(static r => !r.IsGap) < _settings.PrepareQuorum)
            {
                // Gaps (a position taken over from a crashed member, nothing known there yet) make no quorum: with
                // them, "nothing" could be decided for a key whose value is on its way from repair.
                Interlocked.Increment(ref _conflicts);
                await BackoffAsync(++conflicts, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var newest = Newest(promises.Ok);

            if (promises.RefusedNewest is { } refused && refused.Accepted > newest.Accepted && promises.Ok.Exists(r => r.IsEmpty))
            {
                // Empty positions (new owners that lost the state) promised, while a position that holds a newer value
                // refused: deciding on the empties would commit "nothing" over that value. Go above its promise.
                Interlocked.Increment(ref _conflicts);
                state.See(refused.Promised);
                await BackoffAsync(++conflicts, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var current = new VersionedValue(newest.Value, newest.Version ?? EntryVersion.Zero);
            // Chosen: held as acceptor state by a quorum, and no hint (copy, restored entry) among the answers; else
            // the accept goes out, which makes the hints acceptor state again, so later reads decide in one round.
            // An update made to confirm hints (prepareFirst) always sends it: the quorum that answered its prepare
            // first may not include the hint it was made for (a slow owner), and "chosen" would then end it unsent.
            var chosen = !promises.Ok.Exists(r => r.IsCopy) && promises.Ok.Count(r => r.Accepted == newest.Accepted) >= _settings.AcceptQuorum
                && ChosenOnDistinctNodes(promises, newest.Accepted, nodes);
            bool write;
            MsgValue newValue;
            EntryVersion newVersion;
            if (ourWrites is not null && ourWrites.Contains(current.Version))
            {
                // An accept of ours from an earlier round of this update landed: it is the change; commit it.
                (write, newValue, newVersion) = (true, current.Value, current.Version);
            }
            else
            {
                if (!blind && mayHaveLanded && decidedOn is { } basis && current.Version != basis.Version)
                {
                    // Someone else's value is newer than the one our change was decided on: our change may have been
                    // committed and then overwritten, or never. Applying it again could apply it twice.
                    throw new ChordWriteException(
                        $"The update of {RingNode.Describe(key)} {ChordWriteException.MetConcurrentWrite}: it may or may not have been applied (the key is now at version {current.Version}).", 0);
                }

                var decision = change(current);
                (write, newValue, newVersion) = decision.Write ? (true, decision.Value, ballot) : (false, current.Value, current.Version);
                if (decision.Write)
                {
                    (ourWrites ??= []).Add(ballot);
                    decidedOn = current;
                }
                else if (chosen && !confirmHints)
                {
                    // Nothing to write and the value is already committed: done in one round, and our accept may
                    // use this ballot next time (a quorum promised it; nobody accepted it).
                    state.Commit(ballot, current.Value, current.Version);
                    return new RegisterOutcome(false, current, current, quorumRounds);
                }
            }

            var next = EntryVersion.After(ballot, _transport.ProposerId);
            quorumRounds++;
            progress.MayHaveLanded |= write; // in flight: a deadline that ends the round cannot tell
            var sentAccepts = _transport.AcceptAll(key, ballot, newValue, newVersion, next, cancellationToken);
            var acks = await CollectAsync(i => sentAccepts[i],
                _settings.AcceptQuorum, waitForEmpty: false, cancellationToken, settle: write, spread: AcceptorNodes(key)).ConfigureAwait(false); // the ring now
            progress.Saw(acks.Ok.Count);
            if (Landed(acks, ballot))
            {
                state.Commit(next, newValue, newVersion);
                _transport.Committed(key, newValue, newVersion);
                var result = new VersionedValue(newValue, newVersion);
                return write ? new RegisterOutcome(true, decidedOn ?? current, result, quorumRounds) : new RegisterOutcome(false, current, current, quorumRounds);
            }

            mayHaveLanded |= write && acks.MayHaveLanded;
            progress.MayHaveLanded = mayHaveLanded;
            Interlocked.Increment(ref _conflicts);
            state.Lose(acks.Highest);
            await BackoffAsync(++conflicts, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// True when an accept round's yes answers make a quorum, counting only those whose node still holds what it
    /// accepted (see <see cref="IRegisterTransport.AcceptorAlive"/>): the whole-ring simulation found writes
    /// acknowledged by three or four positions on one node that crashed before the round ended, then answered for by
    /// their new owner with the older value. A round that falls short this way may still have landed: the update
    /// prepares again and finds out.
    /// </summary>
    private bool Landed(Collected round, EntryVersion ballot)
    {
        var alive = 0;
        var distinct = 0;
        for (var i = 0; i < round.Ok.Count; i++)
        {
            // Only yes answers under this round's ballot: a position that holds our value re-accepted under a later
            // ballot says yes too (it landed there), but acceptances under different ballots make no quorum.
            if (round.Ok[i].Accepted != ballot)
            {
                continue;
            }

            var node = round.OkNodes?[i];
            if (node is null || IsAlive(node))
            {
                alive++;
                if (node is null || FirstAt(round.OkNodes!, i, ballot, round.Ok))
                {
                    distinct++;
                }
            }
        }

        if (round.OkNodes is null)
        {
            return alive >= _settings.AcceptQuorum;
        }

        // On as many distinct nodes as the round waited for (three, or every node the key has), or on two (one
        // node's crash cannot take it), or on fewer when no position refused (those that did not say yes cannot: a
        // frozen, unreachable or not yet serving node must not stall the key). A round whose yes answers are all on
        // one node while another refused does not count, whether every position answered early or its deadline
        // passed: a prepare above the refusal's promise can reach that node. The seed 5013 trace shows a write
        // acknowledged by three positions of one node while the key's other node refused, then lost with that
        // node's handoff. (Two nodes, not the full spread, with a refusal: under racing writers the stricter rule
        // made rounds fail that used to land, and a writer starved for its whole deadline in a loaded suite run.)
        return alive >= _settings.AcceptQuorum && (distinct >= Math.Min(round.DistinctNeeded, 2) || round.RefusedNewest is null);
    }

    /// <summary>True for a node still holding what it accepted; <c>#i</c> names a position whose node the transport does not know.</summary>
    private bool IsAlive(string node) => node.StartsWith('#') || _transport.AcceptorAlive(node);

    /// <summary>True when <paramref name="nodes"/>[<paramref name="at"/>] appears there for the first time (counts each node once, without a set).</summary>
    private static bool FirstAt(IReadOnlyList<string> nodes, int at)
    {
        for (var j = 0; j < at; j++)
        {
            if (string.Equals(nodes[j], nodes[at], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>As <see cref="FirstAt(IReadOnlyList{string}, int)"/>, among the yes answers under <paramref name="ballot"/> only.</summary>
    private static bool FirstAt(IReadOnlyList<string> nodes, int at, EntryVersion ballot, List<AcceptorReply> ok)
    {
        for (var j = 0; j < at; j++)
        {
            if (ok[j].Accepted == ballot && string.Equals(nodes[j], nodes[at], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// True when the positions that hold <paramref name="accepted"/> (as their own acceptor state) are on two distinct
    /// live nodes (or the key's one node), as a read requires: a value three positions of one node accepted, its
    /// write still in flight, is not safe from that node's crash; the accept that follows commits it on the others.
    /// </summary>
    private bool ChosenOnDistinctNodes(Collected round, EntryVersion accepted, string[] nodes)
    {
        if (round.OkNodes is not { } okNodes)
        {
            return true;
        }

        var keyNodes = 0;
        for (var i = 0; i < nodes.Length; i++)
        {
            keyNodes += FirstAt(nodes, i) ? 1 : 0;
        }

        var holding = new List<string>(RegisterSettings.Positions);
        for (var i = 0; i < round.Ok.Count; i++)
        {
            if (round.Ok[i].Accepted == accepted && !round.Ok[i].IsCopy && IsAlive(okNodes[i]) && !holding.Contains(okNodes[i], StringComparer.Ordinal))
            {
                holding.Add(okNodes[i]);
            }
        }

        return holding.Count >= Math.Min(ChosenSpread, keyNodes);
    }

    /// <summary>
    /// The value a prepare builds on: the one accepted under the highest ballot among the positions' own acceptor
    /// state (Paxos), unless a hint (a placement copy, a restored entry) holds a newer <i>version</i>, a value some
    /// proposer wrote later, which it then is. Among hints, the newest version wins (then the highest ballot).
    /// </summary>
    /// <remarks>
    /// A hint's accepted ballot alone does not outrank acceptor state: a node back from a crash may hold a re-accept of
    /// an old value (a read's commit, its version unchanged) under a ballot above one its positions' interim owner
    /// promised and committed a new write under while it was down. Ranked by ballot, that old value replaced the
    /// write (the whole-ring simulation's trace of seed 5182: a delete re-accepted at 29, the node's crash, a
    /// compare-and-set committed at 28 by the interim owner, then the node's return and the delete back).
    /// </remarks>
    private static AcceptorReply Newest(List<AcceptorReply> ok)
    {
        AcceptorReply state = default, hint = default;
        bool anyState = false, anyHint = false;
        foreach (var reply in ok)
        {
            if (!reply.IsCopy)
            {
                if (!anyState || reply.Accepted > state.Accepted)
                {
                    (state, anyState) = (reply, true);
                }
            }
            else if (!anyHint || VersionOf(reply) > VersionOf(hint) || (VersionOf(reply) == VersionOf(hint) && reply.Accepted > hint.Accepted))
            {
                (hint, anyHint) = (reply, true);
            }
        }

        if (!anyState)
        {
            return hint;
        }

        return anyHint && VersionOf(hint) > VersionOf(state) ? hint : state;

        static EntryVersion VersionOf(AcceptorReply reply) => reply.Version ?? EntryVersion.Zero;
    }

    /// <summary>The node of each acceptor of the key, as the transport sees it (a position without one is its own).</summary>
    private string[] AcceptorNodes(byte[] key)
    {
        var nodes = new string[RegisterSettings.Positions];
        for (var i = 0; i < nodes.Length; i++)
        {
            nodes[i] = _transport.AcceptorNode(key, i) ?? $"#{i}";
        }

        return nodes;
    }

    /// <summary>
    /// A random pause after the <paramref name="conflicts"/>-th conflict of one update, so that duelling proposers stop
    /// refusing each other: uniform in [0, ceiling) ("full jitter"), the ceiling doubling from one round time (as
    /// measured here) up to <see cref="RegisterSettings.MaxBackoff"/>. A pause shorter than a round does not end a
    /// duel: on a loaded machine rounds take tens of milliseconds, so a fixed few milliseconds would not either.
    /// </summary>
    private async Task BackoffAsync(int conflicts, CancellationToken cancellationToken)
    {
        double fraction;
        lock (_randomLock)
        {
            fraction = _random.NextDouble();
        }

        var round = Math.Max(RoundTime.TotalMilliseconds, MinimumBackoffBase.TotalMilliseconds);
        var ceiling = Math.Min(_settings.MaxBackoff.TotalMilliseconds, round * Math.Pow(2, Math.Min(conflicts - 1, 16)));
        var pause = TimeSpan.FromMilliseconds(fraction * ceiling);
        if (pause <= TimeSpan.Zero)
        {
            return;
        }

        var done = NewCompletion();
        using var timer = _transport.Time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), done, pause, Timeout.InfiniteTimeSpan);
        using var cancelled = cancellationToken.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), done);
        await done.Task.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The distinct nodes the holders of a value found "chosen" by a prepare must be on, at most (as for a read).</summary>
    private const int ChosenSpread = 2;

    /// <summary>The most counters a prepare skips beyond the highest it saw (one more per conflict of the update, up to this).</summary>
    private const int MaxSkip = 16;

    /// <summary>The smallest base of the backoff: a round that answered at once still pauses up to this on its first conflict.</summary>
    private static readonly TimeSpan MinimumBackoffBase = TimeSpan.FromMilliseconds(1);

    /// <summary>How long a quorum round of this proposer takes, smoothed (an exponentially weighted mean, 1/8 per round).</summary>
    public TimeSpan RoundTime => TimeSpan.FromTicks(Volatile.Read(ref _roundTicks));

    private long _roundTicks;

    /// <summary>Folds one round's duration into <see cref="RoundTime"/> (races between rounds only lose a sample).</summary>
    private void SampleRound(TimeSpan elapsed)
    {
        var mean = Volatile.Read(ref _roundTicks);
        Volatile.Write(ref _roundTicks, mean == 0 ? elapsed.Ticks : mean + ((elapsed.Ticks - mean) / 8));
    }

    private TaskCompletionSource NewCompletion() =>
        new(_settings.InlineContinuations ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Sends one request to each position and waits until a quorum said yes (and, with <paramref name="waitForEmpty"/>,
    /// no yes was "nothing here", or the position deadline passed), a quorum became impossible, all answered, or the
    /// token ended it.
    /// </summary>
    /// <param name="send">Sends the request to the acceptor at a position index.</param>
    /// <param name="quorum">The yes answers needed.</param>
    /// <param name="waitForEmpty">Wait (until the position deadline) for more answers when a yes said "nothing here".</param>
    /// <param name="cancellationToken">The update's deadline.</param>
    /// <param name="spread">
    /// The node of each position, for accepts: yes answers must come from as many distinct nodes as the quorum has
    /// positions (or as there are), until the position deadline passes.
    /// </param>
    /// <param name="settle">
    /// When the quorum fails, wait for the other answers too (until the position deadline): an accept of a changed
    /// value that every position refused certainly did not land, so the update can retry it on a newer value.
    /// </param>
    /// <param name="spreadGates">
    /// False for a prepare: its answers only record their nodes (for <see cref="ChosenOnDistinctNodes"/>); a prepare
    /// waits for no particular spread.
    /// </param>
    private async Task<Collected> CollectAsync(Func<int, Task<AcceptorReply?>> send, int quorum, bool waitForEmpty, CancellationToken cancellationToken, bool settle = false, string[]? spread = null,
        bool spreadGates = true)
    {
        var distinct = spread is null ? 0 : spread.Distinct(StringComparer.Ordinal).Count();
        var started = _transport.Time.GetTimestamp();
        var collector = new Collector(quorum, waitForEmpty, settle, spread, spreadGates ? Math.Min(quorum, distinct) : 0, NewCompletion(), _transport.Time);
        for (var i = 0; i < RegisterSettings.Positions; i++)
        {
            Task<AcceptorReply?> answer;
            try
            {
                answer = send(i);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                answer = Task.FromResult<AcceptorReply?>(null);
            }

            collector.Track(answer, i);
        }

        using var deadline = waitForEmpty || settle || (spreadGates && distinct > 0 && distinct < RegisterSettings.Positions)
            ? _transport.Time.CreateTimer(static s => ((Collector)s!).PositionDeadline(), collector,
                waitForEmpty ? _settings.EmptyTimeout : _settings.PositionTimeout, Timeout.InfiniteTimeSpan)
            : null;
        using var cancelled = cancellationToken.Register(static s => ((Collector)s!).Cancel(), collector);
        await collector.Done.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        var collected = collector.Snapshot();
        if (collected.QuorumHeardAt is { } heard && !collected.WaitedOut)
        {
            // How long until a quorum of answers (yes or no) came, in a round that ended before any position deadline:
            // what a round costs now. Not until the round ended: a prepare that waits for every answer, or a refused
            // accept that waits for the rest, lasts as long as the slowest of the five.
            SampleRound(_transport.Time.GetElapsedTime(started, heard));
        }

        return collected;
    }

    private void Trim()
    {
        if (_keys.Count <= _settings.CacheCapacity)
        {
            return;
        }

        // Drop idle keys until a tenth is free; a dropped key's next update prepares first (two rounds).
        var excess = _keys.Count - (_settings.CacheCapacity * 9 / 10);
        foreach (var (key, state) in _keys)
        {
            if (excess <= 0)
            {
                break;
            }

            if (state.Gate.CurrentCount == 1 && _keys.TryRemove(key, out _))
            {
                excess--;
            }
        }
    }

    /// <summary>What one round collected: the yes answers, the highest promise any answer named, and whether any position may have said yes unheard.</summary>
    /// <param name="Ok">The yes answers.</param>
    /// <param name="Highest">The promise the next ballot must exceed (see BallotToBeat).</param>
    /// <param name="Unheard">True when some position gave no answer at all.</param>
    /// <param name="RefusedNewest">Of the refusals, the one that reported the highest accepted ballot (null: none refused).</param>
    /// <param name="WaitedOut">True when the round ended at (or after) its position deadline.</param>
    /// <param name="QuorumHeardAt">When (a timestamp) answers from a quorum of positions had come, yes or no; null: they never did.</param>
    /// <param name="OkNodes">For an accept round with a spread: the node of each yes answer, in the order of <paramref name="Ok"/>.</param>
    /// <param name="DistinctNeeded">The distinct nodes the round's yes answers had to come from (0: no spread asked).</param>
    private sealed record Collected(List<AcceptorReply> Ok, EntryVersion Highest, bool Unheard, AcceptorReply? RefusedNewest = null, bool WaitedOut = false, long? QuorumHeardAt = null,
        List<string>? OkNodes = null, int DistinctNeeded = 0)
    {
        /// <summary>For an accept: some acceptor may hold the value (it said yes, or its answer never came).</summary>
        public bool MayHaveLanded => Ok.Count > 0 || Unheard;
    }

    private sealed class Collector(int quorum, bool waitForEmpty, bool settle, string[]? spread, int distinctNeeded, TaskCompletionSource done, TimeProvider time)
    {
        private long? _quorumHeardAt;
        private readonly HashSet<string> _okNodes = new(StringComparer.Ordinal);
        private readonly List<string>? _okSpread = spread is null ? null : new(RegisterSettings.Positions);
        private AcceptorReply? _refusedNewest;
        private readonly List<AcceptorReply> _ok = new(RegisterSettings.Positions);
        private readonly List<EntryVersion> _promises = new(RegisterSettings.Positions);
        private int _no;
        private int _refused; // answered no
        private int _answered;
        private bool _deadlinePassed;

        public Task Done => done.Task;

        public void Track(Task<AcceptorReply?> answer, int position)
        {
            if (answer.IsCompleted)
            {
                Report(answer, position);
            }
            else
            {
                answer.ContinueWith((t, s) => ((Collector)s!).Report(t, position), this, CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        public void PositionDeadline()
        {
            lock (_ok)
            {
                _deadlinePassed = true;
                Decide();
            }
        }

        public void Cancel() => done.TrySetResult();

        public Collected Snapshot()
        {
            lock (_ok)
            {
                return new Collected([.. _ok], BallotToBeat(), _ok.Count + _refused < RegisterSettings.Positions, _refusedNewest, _deadlinePassed, _quorumHeardAt,
                    _okSpread is null ? null : [.. _okSpread], distinctNeeded);
            }
        }

        private void Report(Task<AcceptorReply?> answer, int position)
        {
            var reply = answer.IsCompletedSuccessfully ? answer.Result : null;
            lock (_ok)
            {
                if (done.Task.IsCompleted)
                {
                    return;
                }

                _answered++;
                if (reply is { } r)
                {
                    _promises.Add(r.Promised);

                    if (r.Ok)
                    {
                        _ok.Add(r);
                        if (spread is not null)
                        {
                            _okNodes.Add(spread[position]);
                            _okSpread!.Add(spread[position]);
                        }
                    }
                    else
                    {
                        _no++;
                        _refused++;
                        if (_refusedNewest is not { } known || r.Accepted > known.Accepted)
                        {
                            _refusedNewest = r;
                        }
                    }
                }
                else
                {
                    _no++;
                }

                if (_quorumHeardAt is null && _ok.Count + _refused >= quorum)
                {
                    _quorumHeardAt = time.GetTimestamp();
                }

                Decide();
            }
        }

        /// <summary>
        /// The promise the next ballot must exceed: the quorum-th lowest of those answered, which is enough for a
        /// quorum of these acceptors to take it. Not the highest: one or two acceptors claiming an absurd promise (a
        /// hostile or corrupt entry) are outvoted instead of pushing every later ballot toward the end of the range.
        /// </summary>
        private EntryVersion BallotToBeat()
        {
            if (_promises.Count == 0)
            {
                return EntryVersion.Zero;
            }

            _promises.Sort();
            return _promises[Math.Min(quorum, _promises.Count) - 1];
        }

        private void Decide()
        {
            // A prepare that met empty positions or hints waits for the others; once its deadline passed it decides on
            // what came, but never counting hints (copies, restored entries) toward the quorum: a hint may be an old
            // value at a position whose owner changed, and three answers of which one is such a hint can all miss the
            // value a quorum accepted since.
            var enough = _ok.Count >= quorum && (!waitForEmpty || !_ok.Exists(r => r.IsEmpty) || (_deadlinePassed && _ok.Count(r => !r.IsCopy) >= quorum))
                && (_okNodes.Count >= distinctNeeded || _deadlinePassed);
            var impossible = RegisterSettings.Positions - _no < quorum;
            if (enough || _answered == RegisterSettings.Positions || (impossible && (!settle || _deadlinePassed)))
            {
                done.TrySetResult();
            }
        }
    }

    /// <summary>What one update got furthest to, reported when its deadline ends it.</summary>
    private sealed class Progress
    {
        public int BestAccepts { get; private set; }

        /// <summary>
        /// An accept of the update's changed value may have been taken: true from the moment one goes out, and after
        /// its round only if some position said yes or did not answer (every one refusing it proves it did not land).
        /// </summary>
        public bool MayHaveLanded { get; set; }

        public void Saw(int accepts) => BestAccepts = Math.Max(BestAccepts, accepts);
    }

    /// <summary>This proposer's knowledge of one key.</summary>
    private sealed class KeyState
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>The ballot a quorum promised us next; null when we must prepare first.</summary>
        public EntryVersion? Next { get; private set; }

        /// <summary>The value and version we last committed (valid while <see cref="Next"/> is set).</summary>
        public MsgValue Value { get; private set; } = MsgValue.Nil;

        public EntryVersion Version { get; private set; } = EntryVersion.Zero;

        /// <summary>The highest ballot seen for the key; the next prepare goes above it.</summary>
        public EntryVersion Highest { get; private set; } = EntryVersion.Zero;

        public void Commit(EntryVersion next, MsgValue value, EntryVersion version)
        {
            // Kept for as long as the key is: a value that came in an acceptor's answer must not keep that frame alive.
            (Next, Value, Version) = (next, value.Detached(), version);
            See(next);
        }

        public void Lose(EntryVersion highest)
        {
            Next = null;
            See(highest);
        }

        public void See(EntryVersion ballot)
        {
            if (ballot > Highest)
            {
                Highest = ballot;
            }
        }
    }
}
