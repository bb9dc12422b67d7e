using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Numerics;
using Chord.Dht.Mesh;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Ring;

/// <summary>
/// The per-key consensus register (CASPaxos) at the key's five positions: this node's acceptors (its entries) and its
/// proposer, which coordinates updates from here, whichever node (or grain activation) asks.
/// </summary>
/// <remarks>
/// <para>Keys whose positions are all owned by our nodes use the register. A key with a position on a py2p node (which
/// has no register and cannot acknowledge) keeps the ABD path of <c>RingNode.Quorum.cs</c>; see DURABILITY.md.</para>
/// <para>Versioned stores (read repair, anti-entropy, handoff, placement copies) obey the acceptor's promise: a store
/// at version v is an accept at ballot v, so no repair can slip a value under a promise a proposer relies on.</para>
/// </remarks>
public sealed partial class RingNode
{
    private RegisterProposer? _proposer;

    // The node's ballot floor: a position holding nothing refuses ballots at or below it (raised when a key's state is
    // dropped, so that a proposer that prepared before the drop cannot get a lower ballot accepted after it).
    private long _ballotFloor;

    /// <summary>The register's proposer on this node (made on first use).</summary>
    private RegisterProposer Proposer => _proposer ??= CreateProposer();

    private RegisterProposer CreateProposer()
    {
        var proposer = new RegisterProposer(new RingRegisterTransport(this), new RegisterSettings
        {
            PrepareQuorum = Options.ReadQuorum,
            AcceptQuorum = Options.WriteQuorum,
            EmptyTimeout = Options.SuspectAfter + TimeSpan.FromSeconds(1) < Options.RequestTimeout ? Options.SuspectAfter + TimeSpan.FromSeconds(1) : Options.RequestTimeout,
        });
        return Interlocked.CompareExchange(ref _proposer, proposer, null) ?? proposer;
    }

    /// <summary>Updates of the register committed in one round (this node's proposer kept the keys' promises).</summary>
    public long RegisterOneRoundWrites => _proposer?.OneRoundWrites ?? 0;

    /// <summary>Prepare rounds this node's proposer ran (first writes of a key here, reads that commit, conflicts).</summary>
    public long RegisterPrepareRounds => _proposer?.FullRounds ?? 0;

    /// <summary>Rounds of this node's proposer that another proposer's ballot (or too few answers) refused.</summary>
    public long RegisterConflicts => _proposer?.Conflicts ?? 0;

    /// <summary>
    /// Applies <paramref name="change"/> to the key's committed value atomically (compare-and-set at ring level): the
    /// change is decided on the value that is current when it commits, whichever node or process writes the key
    /// meanwhile. One quorum round when this node wrote the key last; two otherwise. The change may run more than
    /// once (a conflict retries it on the newer value); it must not have side effects.
    /// </summary>
    /// <returns>Whether the change wrote, the value it was decided on, and the key's value afterwards.</returns>
    /// <exception cref="ChordWriteException">No quorum committed the update in time; its write may or may not have been applied.</exception>
    /// <param name="key">The key.</param>
    /// <param name="change">Decides the new value from the committed one.</param>
    /// <param name="announce">
    /// Broadcast py2p's notify when a write adds or deletes the key (on by default, as every write of the dictionary
    /// API does); off for keys nobody lists, such as grain-state records (a broadcast is a frame per peer).
    /// </param>
    /// <param name="cancellationToken">Ends the wait; the update may or may not have been applied then.</param>
    /// <param name="safeToRerun">
    /// True when running the change again on a newer value can never apply it twice: it checks a version or an ETag and
    /// keeps the value when that does not match (grain storage). Then an update whose own accept may have landed before
    /// another writer's value replaced it runs the change again (which then keeps the value: a conflict) instead of
    /// failing with "may or may not have been applied". The one thing given up: such a write is reported as not
    /// written even if it was committed and replaced by a writer that saw it. Never for a plain set: a set that may have
    /// been seen, then replaced, must not be written again (the deterministic simulation shows the history it makes).
    /// </param>
    public async Task<RegisterOutcome> UpdateAsync(byte[] key, Func<VersionedValue, RegisterChange> change, bool announce = true, bool safeToRerun = false, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(change);
        using var deadline = Deadline(cancellationToken);
        var outcome = await UpdateWithinAsync(key, change, deadline.Token, cancellationToken, blind: safeToRerun);
        if (announce && outcome.Written)
        {
            await AnnounceKeyAsync(key, added: !outcome.Current.Value.IsNil);
        }

        return outcome;
    }

    /// <inheritdoc cref="UpdateAsync(byte[], Func{VersionedValue, RegisterChange}, bool, bool, CancellationToken)"/>
    public Task<RegisterOutcome> UpdateAsync(string key, Func<VersionedValue, RegisterChange> change, bool announce = true, bool safeToRerun = false, CancellationToken cancellationToken = default) =>
        UpdateAsync(KeyBytes(key), change, announce, safeToRerun, cancellationToken);

    /// <summary>
    /// Writes <paramref name="value"/> (nil deletes) only when the key's committed version is <paramref name="expected"/>
    /// (<see cref="EntryVersion.Zero"/>: never written, or deleted and collected), atomically against every other
    /// writer of the key.
    /// </summary>
    /// <returns>Whether it was written, and the key's value and version afterwards (or the ones that did not match).</returns>
    public async Task<CompareAndSetResult> CompareAndSetAsync(byte[] key, EntryVersion expected, MsgValue value, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        var outcome = await UpdateAsync(key, current => current.Version == expected ? RegisterChange.To(value) : RegisterChange.Keep, announce: true, cancellationToken: cancellationToken);
        return new CompareAndSetResult(outcome.Written, outcome.Current);
    }

    /// <inheritdoc cref="CompareAndSetAsync(byte[], EntryVersion, MsgValue, CancellationToken)"/>
    public Task<CompareAndSetResult> CompareAndSetAsync(string key, EntryVersion expected, MsgValue value, CancellationToken cancellationToken = default) =>
        CompareAndSetAsync(KeyBytes(key), expected, value, cancellationToken);

    /// <summary>The update, within the operation's deadline; the py2p path for keys the register cannot serve.</summary>
    private async Task<RegisterOutcome> UpdateWithinAsync(byte[] key, Func<VersionedValue, RegisterChange> change, CancellationToken deadline, CancellationToken caller, bool blind = false)
    {
        if (!RegisterServes(key))
        {
            return await LegacyUpdateAsync(key, change, deadline, caller);
        }

        try
        {
            return await Proposer.UpdateAsync(key, change, deadline, blind);
        }
        catch (OperationCanceledException e) when (!caller.IsCancellationRequested)
        {
            var acknowledged = (e as RegisterTimeoutException)?.BestAccepts ?? 0;
            var landed = (e as RegisterTimeoutException)?.MayHaveLanded ?? true;
            throw new ChordWriteException(
                $"The write to {Describe(key)} was acknowledged by {acknowledged} of 5 positions within {Options.RequestTimeout.TotalSeconds:0.#} s; {Options.WriteQuorum} are needed."
                + (landed ? " It may still take effect: a later read either sees it or never will." : " It did not take effect."), acknowledged);
        }
    }

    /// <summary>
    /// True when every position of the key is owned by one of our nodes (or none is known: the proposer finds out),
    /// so the register can serve it; false when a py2p node owns one (the key then takes py2p's path: see
    /// DURABILITY.md).
    /// </summary>
    public bool RegisterServes(byte[] key)
    {
        if (!_ringHasEpochless)
        {
            return true; // every storing member has an epoch: none is a py2p node (the check of every write, made cheap)
        }

        foreach (var position in KeyHashes.AllShared(key))
        {
            if (OwnerOf(position.Reduced, null) is { } owner && IsPy2pMember(owner))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A member that is a py2p node: learnt first-hand from its chord meta, and never heard speak our extensions. The
    /// epoch is tested first, the cheapest test: this runs for every connected peer on the routing path.
    /// </summary>
    private bool IsPy2pMember(RingMember member) => member.Epoch < 0 && member.Id != Id && !SpeaksExtensionsKnown(member.Id);

    /// <summary>
    /// A read of the register: the value a quorum of positions holds under the newest accepted ballot they report.
    /// When fewer than a quorum hold it (a write in flight, a position that missed one), the read commits what it
    /// found through the proposer (an update that keeps the value), so no later read can see an older value.
    /// </summary>
    private async Task<QuorumRead> ReadRegisterAsync(byte[] key, CancellationToken deadline, CancellationToken caller)
    {
        var quorum = Options.ReadQuorum;
        var owners = PositionOwners(key);
        var distinctNeeded = DistinctNeeded(owners, ReadSpread);
        // Four answers whose newest value a quorum holds, short only of a second node: the fifth position's node may
        // be frozen, and waiting for it would hold the read until the deadline; the commit below settles it within
        // the position deadline instead. For the same reason the answers are waited for at most ReadSpreadWait: when
        // the only other node of a key's quorum is frozen (two positions on it), three answers from one node never
        // decide, and the read went on to its commit only at the deadline, too late (StorageFailoverTests).
        using var collecting = ClockDeadline.Start(Options.Mesh.TimeProvider, ReadSpreadWait(), deadline);
        var answers = await CollectAsync(key, a => a.Exists(x => !x.Answer.Versioned)
            ? a.GroupBy(x => x.Answer.Value).Any(g => g.Count() >= quorum)
            : Decided(a, quorum, owners, distinctNeeded) || SpreadOnlyShort(a, quorum, owners, distinctNeeded), collecting.Token, first: quorum, owners: owners);
        caller.ThrowIfCancellationRequested();
        if (answers.Exists(a => !a.Answer.Versioned))
        {
            // A py2p-written entry among them: py2p's rule decides.
            var value = DecideByMajority(key, answers);
            AdoptKey(key);
            return new QuorumRead(value, EntryVersion.Zero, Legacy: true);
        }

        if (Decided(answers, quorum, owners, distinctNeeded))
        {
            var newest = answers.MaxBy(a => a.Answer.Accepted ?? EntryVersion.Zero)!.Answer;
            if (answers.Exists(a => a.Answer.IsCopy))
            {
                // Decided by the other positions' acceptor state; the hints (copies, restored entries) would make
                // every later read of the key ask all five. Commit the value once more, in the background, so they
                // become acceptor state: the next read decides on its first three again.
                ConfirmHintsInBackground(key);
            }

            return new QuorumRead(newest.Value, newest.Version ?? EntryVersion.Zero, Legacy: false);
        }

        try
        {
            RingMetrics.ReadRepairs.Add(1);
            var committed = await Proposer.UpdateAsync(key, static _ => RegisterChange.Keep, deadline);
            return new QuorumRead(committed.Current.Value, committed.Current.Version, Legacy: false);
        }
        catch (OperationCanceledException) when (!caller.IsCancellationRequested)
        {
            throw new ChordTimeoutException(
                $"The read of {Describe(key)} found no value held by {quorum} positions and could not commit one within {Options.RequestTimeout.TotalSeconds:0.#} s ({answers.Count} of 5 answered).", answers.Count);
        }
    }

    private readonly ConcurrentDictionary<byte[], byte> _confirming = new(ByteArrayComparer.Instance);

    /// <summary>
    /// Commits a key's value again (an update that keeps it: prepare, and an accept that makes copies and restored
    /// entries acceptor state), once at a time per key, tracked so that disposing waits for it within a bound.
    /// </summary>
    private void ConfirmHintsInBackground(byte[] key)
    {
        var copied = key.ToArray();
        if (_disposed != 0 || !_confirming.TryAdd(copied, 0))
        {
            return;
        }

        TrackBackground(Task.Run(async () =>
        {
            try
            {
                using var deadline = new CancellationTokenSource(Options.RequestTimeout, Options.Mesh.TimeProvider);
                await Proposer.UpdateAsync(copied, static _ => RegisterChange.Keep, deadline.Token, prepareFirst: true);
                RingMetrics.ReadRepairs.Add(1);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Best effort (a timeout, a conflict, the node shutting down): the next read of the key tries again.
                RingLog.HintConfirmFailed(Logger, e.GetType().Name);
            }
            finally
            {
                _confirming.TryRemove(copied, out _);
            }
        }));
    }

    /// <summary>
    /// True when the answers decide the read: the newest accepted ballot among them is held by a quorum of positions'
    /// own acceptor state (placement copies are hints and do not count). Three "nothing here" answers, or any copy,
    /// decide nothing while other positions are still out: a position whose owner just changed (a crash, a join)
    /// answers with nothing or with an old copy until repair reaches it.
    /// </summary>
    /// <remarks>
    /// The positions that hold the newest ballot must also be on <paramref name="distinctNeeded"/> distinct nodes (two, or
    /// one when the key has one node; <paramref name="owners"/> names each position's node): three positions of one node
    /// can hold a write still in flight, which that node's crash would take with it (the whole-ring simulation found a
    /// read of such a value, then the value gone). Fewer decide nothing; the read asks on, or commits what it found
    /// (an accept, which reaches three nodes). Two, not three: a read must still decide while one node of a key on
    /// three is frozen.
    /// </remarks>
    private static bool Decided(List<PositionAnswer> answers, int quorum, string[] owners, int distinctNeeded)
    {
        if (answers.Count < quorum || NewestHeldBy(answers) < quorum || !NewestOnDistinctNodes(answers, owners, distinctNeeded))
        {
            return false;
        }

        var uncertain = answers.Exists(a => a.Answer.IsCopy || (a.Answer.Accepted ?? EntryVersion.Zero) == EntryVersion.Zero);
        return !uncertain || answers.Count == 5;
    }

    /// <summary>
    /// True when four answers would decide the read but for the second node: a quorum holds the newest value as its own
    /// acceptor state, nothing among them is a hint or empty, and only the spread is short.
    /// </summary>
    private static bool SpreadOnlyShort(List<PositionAnswer> answers, int quorum, string[] owners, int distinctNeeded) =>
        answers.Count >= 4 && NewestHeldBy(answers) >= quorum
        && !answers.Exists(a => a.Answer.IsCopy || (a.Answer.Accepted ?? EntryVersion.Zero) == EntryVersion.Zero)
        && !NewestOnDistinctNodes(answers, owners, distinctNeeded);

    /// <summary>True when the answers holding the newest accepted ballot (copies not counted) come from at least <paramref name="needed"/> distinct nodes.</summary>
    private static bool NewestOnDistinctNodes(List<PositionAnswer> answers, string[] owners, int needed)
    {
        var newest = EntryVersion.Zero;
        foreach (var a in answers)
        {
            if ((a.Answer.Accepted ?? EntryVersion.Zero) > newest)
            {
                newest = a.Answer.Accepted ?? EntryVersion.Zero;
            }
        }

        Span<int> nodes = stackalloc int[5];
        var distinct = 0;
        foreach (var a in answers)
        {
            if (a.Answer.IsCopy || (a.Answer.Accepted ?? EntryVersion.Zero) != newest)
            {
                continue;
            }

            // The first position (by method) with the same owner stands for its node.
            var node = Array.IndexOf(owners, owners[(int)a.Method]);
            if (nodes[..distinct].IndexOf(node) < 0)
            {
                nodes[distinct++] = node;
            }
        }

        return distinct >= needed;
    }

    /// <summary>The owner of each of the key's positions by this node's directory, or <c>#i</c> for a position without a known owner.</summary>
    private string[] PositionOwners(byte[] key)
    {
        var positions = KeyHashes.AllShared(key);
        var owners = new string[positions.Length];
        for (var i = 0; i < positions.Length; i++)
        {
            owners[i] = OwnerOf(positions[i].Reduced, null)?.Id ?? UnknownOwner[i];
        }

        return owners;
    }

    private static readonly string[] UnknownOwner = ["#0", "#1", "#2", "#3", "#4"];

    /// <summary>How long a register read waits for its answers before it decides with what came (or commits it): a position deadline, or a quarter of the request time when that is shorter.</summary>
    private TimeSpan ReadSpreadWait() => Options.RequestTimeout / 4 < TimeSpan.FromSeconds(1) ? Options.RequestTimeout / 4 : TimeSpan.FromSeconds(1);

    /// <summary>
    /// The distinct nodes a read's deciding positions must be on, at most. One: the rule is off. Two (one node's crash
    /// cannot take the value read, the fix for the crash-profile trace of seed 5092) made reads of a key under racing
    /// writers commit what they found far more often, and a writer starved for its whole deadline
    /// (RingConcurrencyTests, three nodes, three writers, three readers); kept off until it has a cheaper form
    /// (docs/DURABILITY.md, known limits).
    /// </summary>
    private const int ReadSpread = 1;

    /// <summary>How many answers hold the newest accepted ballot among them ("nothing here" counts as ballot zero; copies do not count).</summary>
    private static int NewestHeldBy(List<PositionAnswer> answers)
    {
        if (answers.Count == 0)
        {
            return 0;
        }

        var newest = EntryVersion.Zero;
        foreach (var a in answers)
        {
            if ((a.Answer.Accepted ?? EntryVersion.Zero) > newest)
            {
                newest = a.Answer.Accepted ?? EntryVersion.Zero;
            }
        }

        var count = 0;
        foreach (var a in answers)
        {
            if (!a.Answer.IsCopy && (a.Answer.Accepted ?? EntryVersion.Zero) == newest)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>
    /// The py2p path of an update (a key with a position on a py2p node): a quorum read, the change, and an ABD write
    /// of the result. Not atomic against concurrent writers of the key (py2p cannot take part in a register).
    /// </summary>
    private async Task<RegisterOutcome> LegacyUpdateAsync(byte[] key, Func<VersionedValue, RegisterChange> change, CancellationToken deadline, CancellationToken caller)
    {
        var read = await ReadQuorumAsync(key, deadline, caller);
        var before = new VersionedValue(read.Value, read.Version);
        var decision = change(before);
        if (!decision.Write)
        {
            return new RegisterOutcome(false, before, before, 1);
        }

        // A delete's tombstone (any write's version) must be newer than every version a position holds: the version
        // query asks again when the read went by py2p's rule, and the write goes above any newer one an owner names.
        var highest = read.Legacy ? await HighestVersionAsync(key, deadline, caller) : read.Version;
        var acks = await WriteQuorumAsync(key, SubFlag.Store, decision.Value, highest, deadline, caller);
        var written = acks.Where(a => a.Versioned && a.Version is not null).Select(a => a.Version!.Value).DefaultIfEmpty(EntryVersion.After(highest, Id)).Max();
        return new RegisterOutcome(true, before, new VersionedValue(decision.Value, written), 2);
    }

    // ---- the acceptor: requests at this node ----------------------------------------------------------

    private async ValueTask HandleRegisterRequestAsync(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        var isPrepare = p[0].AsInt64() == (long)RingSubFlag.Prepare;
        var trailingAt = isPrepare ? 3 : 4;
        if (!TryReadRequest(p, trailingAt, out var method, out var position, out var requestId, out var hops) || requestId is null)
        {
            RingLog.Malformed(Logger, isPrepare ? "prepare" : "accept", from.Id ?? "?");
            return;
        }

        if (!TryReadRegisterPackets(p, isPrepare, out var ballot, out var version, out var key, out var next))
        {
            // A ballot or version that does not read (out of range, or the zero ballot) is a fault or a forgery even
            // from one of our nodes: not applied, counted, logged once a minute per peer, and refused to its sender.
            LogRefusedOnce(from, $"a {(isPrepare ? "prepare" : "accept")} whose ballot or version is out of range (counters 0 to {EntryVersion.MaxWireCounterText}, writer ids up to {EntryVersion.MaxWriterLength} bytes, a ballot above zero); refused");
            await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops, OutOfRange)));
            return;
        }

        var request = isPrepare
            ? new PositionRequest(PrepareKind, method, position, Key: key, Ballot: ballot)
            : new PositionRequest(AcceptKind, method, position, p[3], version, key, Ballot: ballot, Next: next);
        MeshPeer? nextHop;
        for (var decisions = 1; ; decisions++)
        {
            try
            {
                nextHop = await NextHopOrNullAsync(position, from);
            }
            catch (MeshConnectException)
            {
                await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops, OwnerUnreachable)));
                return;
            }

            if (nextHop is not null)
            {
                break;
            }

            var answer = ApplyAsOwner(from, request, hops, lastDecision: decisions >= 2);
            if (answer is null)
            {
                return; // a test's cut-off owner or lost answer
            }

            if (answer.Error == MovedAway && decisions < 2)
            {
                continue; // a member took the position over since we decided: it goes on to that member
            }

            await from.WhisperOwningAsync(AckPayload(requestId, answer));
            return;
        }

        RingMetrics.Forwarded.Add(1);
        if (!await SpeaksExtensionsAsync(nextHop, CancellationToken.None))
        {
            await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops + 1, PyOwnerHasNoRegister)));
            return;
        }

        _relays[requestId] = new Relay(from, requestId, request.Kind, method, position, RelayExpiry());
        await nextHop.WhisperOwningAsync(RequestPayload(request, requestId, hops + 1));
    }

    /// <summary>
    /// A prepare or accept at its owner, this node (a lone request, or one position of a batch): the headroom rule, then
    /// the acceptor. Null when no answer is to be sent (a test's cut-off owner, or its lost answer). A refusal because a
    /// member took the position over (<see cref="MovedAway"/>) comes back before the lost-answer hook unless
    /// <paramref name="lastDecision"/>: the caller decides again where the request goes.
    /// </summary>
    private Answer? ApplyAsOwner(MeshPeer from, PositionRequest request, int hops, bool lastDecision)
    {
        if (IgnoreWritesForTest)
        {
            return null; // a test's unreachable owner: no answer
        }

        if (!WithinHeadroom(request))
        {
            LogRefusedOnce(from, HeadroomRefusal(request.Kind == PrepareKind ? "prepare" : "accept"));
            return BeyondHeadroomAnswer(request, hops);
        }

        var answer = ApplyLocally(request, hops);
        if (answer.Error == MovedAway && !lastDecision)
        {
            return answer;
        }

        return DropAckForTest is { } drop && drop(request.Method, request.Position) ? null : answer; // a lost answer: applied, never acknowledged
    }

    /// <summary>
    /// The headroom rule at an owner (see <see cref="EntryVersion"/>): true unless a counter of the request (version,
    /// ballot, next ballot) is above <see cref="EntryVersion.HeadroomStart"/> and more than
    /// <see cref="EntryVersion.HeadroomStep"/> above the highest counter the position holds or the node's ballot
    /// floor. Read without the table lock: a position's counters never go down (a dropped entry raises the floor
    /// first), so a stale read can only refuse what a fresh one would.
    /// </summary>
    private bool WithinHeadroom(PositionRequest request)
    {
        var highest = Math.Max(request.Version?.Counter ?? 0, Math.Max(request.Ballot?.Counter ?? 0, request.Next?.Counter ?? 0));
        if (highest <= EntryVersion.HeadroomStart)
        {
            return true;
        }

        var held = Interlocked.Read(ref _ballotFloor);
        if (_table.TryGetValue((request.Method, request.Position.Value), out var entry))
        {
            held = Math.Max(held, entry.PromisedBallot.Counter); // the promise is never below the accepted ballot or the version
        }

        return highest - held <= EntryVersion.HeadroomStep;
    }

    private static string HeadroomRefusal(string kind) =>
        $"a {kind} whose counter is above {EntryVersion.HeadroomStartText} and more than {EntryVersion.HeadroomStep} above what the position holds; refused";

    /// <summary>
    /// The refusal of a request beyond the headroom, in the form of <see cref="NewerHeld"/>: what the position holds (its
    /// version, accepted ballot and promise, or the node's floor), so a proposer learns at once that this position did
    /// not take it.
    /// </summary>
    private Answer BeyondHeadroomAnswer(PositionRequest request, int hops)
    {
        _table.TryGetValue((request.Method, request.Position.Value), out var held);
        return new Answer(MsgValue.Nil, hops, false, BeyondHeadroom, null, held?.Version, null, Versioned: true)
        {
            Accepted = held?.AcceptedBallot ?? EntryVersion.Zero,
            Promised = Acceptor.PromisedOf(held, Interlocked.Read(ref _ballotFloor)),
        };
    }

    /// <summary>The refusal of a version or ballot from the wire that is out of range (answered where it is read).</summary>
    private static readonly string OutOfRange =
        $"a version or ballot out of range (counters 0 to {EntryVersion.MaxWireCounterText}, writer ids up to {EntryVersion.MaxWriterLength} bytes, a ballot above zero)";

    /// <summary>The refusal of a counter above the headroom start and too far above what the position holds.</summary>
    private static readonly string BeyondHeadroom =
        $"a counter above {EntryVersion.HeadroomStartText} and more than {EntryVersion.HeadroomStep} above what the position holds or promised (the headroom)";

    /// <summary>Reads a prepare's ballot and key, or an accept's ballot, version, key and next ballot (all range-checked).</summary>
    private static bool TryReadRegisterPackets(ImmutableArray<MsgValue> p, bool isPrepare, out EntryVersion ballot, out EntryVersion version, out byte[]? key, out EntryVersion? next)
    {
        version = EntryVersion.Zero;
        key = null;
        next = null;
        var at = isPrepare ? 5 : 6;
        if (!EntryVersion.TryRead(p[at], out ballot) || ballot == EntryVersion.Zero)
        {
            return false;
        }

        if (!isPrepare && !EntryVersion.TryRead(p[at + 1], out version))
        {
            return false;
        }

        var keyAt = isPrepare ? at + 1 : at + 2;
        key = p[keyAt].Kind == MsgKind.Bin ? p[keyAt].AsBytes().ToArray() : null;
        if (!isPrepare && !p[keyAt + 1].IsNil)
        {
            if (!EntryVersion.TryRead(p[keyAt + 1], out var n))
            {
                return false;
            }

            next = n;
        }

        return true;
    }

    private Answer ApplyPrepare((HashMethod Method, BigInteger Position) slot, PositionRequest request, int hops)
    {
        lock (LockFor(slot))
        {
            if (OwnedElsewhere(request.Position))
            {
                return Answer.Refused(hops, MovedAway);
            }

            _table.TryGetValue(slot, out var current);
            var (updated, reply) = Acceptor.Prepare(current, request.Ballot!.Value, request.Key, Interlocked.Read(ref _ballotFloor));
            if (updated is not null)
            {
                PutEntry(slot, updated);
            }

            if (reply.Ok && reply.Version is null && reply.Value.IsNil && TakenOverJustNow(slot.Position))
            {
                reply = reply with { IsCopy = true }; // a promise, but no state known yet at a position taken over from a crashed member
            }

            return RegisterAnswer(reply, hops, refusal: "promised a higher ballot");
        }
    }

    private Answer ApplyAccept((HashMethod Method, BigInteger Position) slot, PositionRequest request, int hops)
    {
        StoredEntry? updated;
        AcceptorReply reply;
        // The value's own copy of any bytes it shares with its frame, made before the slot's lock (PutEntry would make
        // it under the lock, which every other request for the slot's stripe then waits out).
        var value = (request.Value ?? MsgValue.Nil).Detached();
        lock (LockFor(slot))
        {
            if (OwnedElsewhere(request.Position))
            {
                return Answer.Refused(hops, MovedAway);
            }

            _table.TryGetValue(slot, out var current);
            (updated, reply) = Acceptor.Accept(current, request.Ballot!.Value, value, request.Version!.Value,
                request.Key, request.Next, Interlocked.Read(ref _ballotFloor));
            if (updated is not null)
            {
                PutEntry(slot, updated);
            }
        }

        // No placement copy here: the proposer sends the copies of what a quorum accepted (SendPlacementCopiesAsync).
        return RegisterAnswer(reply, hops, refusal: "promised a higher ballot");
    }

    /// <summary>
    /// The refusal of a write that this node decided to apply as the position's owner, and found, under the slot's
    /// lock, that the position has another owner now (a member merged in between): the handler routes it on instead.
    /// </summary>
    internal const string MovedAway = "the position has another owner now";

    /// <summary>
    /// True when the ring names another member as the owner of <paramref name="position"/>. Checked under the slot's
    /// lock by every acceptor write, and paired with <see cref="WaitForOwnerDecisions"/>: a write decided here before a
    /// member took the position over either lands before a handoff scans the table, or is refused and routed on;
    /// never applied after the scan, where no handoff would find it (a window a review of the fencing change named).
    /// </summary>
    /// <param name="position">The position written.</param>
    /// <param name="sender">
    /// For a versioned store (repair, a leaving node's entries, anti-entropy): the node it came from, left out as the
    /// routing decision left it out. A leaving node sends its entries to whoever owns them without it; a node whose
    /// ring still names the leaver would otherwise refuse them all. Not for a prepare or an accept: the newcomer's own
    /// proposals, made before it joined, are exactly the writes that must not land here after its handoff.
    /// </param>
    private bool OwnedElsewhere(RingPosition position, string? sender = null)
    {
        var target = position.Reduced;
        var owner = OwnerOf(target, null);
        if (sender is not null && owner?.Id == sender)
        {
            owner = OwnerOf(target, new HashSet<string>(StringComparer.Ordinal) { sender }); // a set only in that rare case
        }

        if (owner is null || owner.Id == Id || IsPy2pMember(owner))
        {
            // A py2p owner: its positions take py2p's path, where the best node known answers for an owner it cannot
            // reach (DialOwnerAsync); this node is then that node, as before.
            return false;
        }

        Interlocked.Increment(ref _movedAway);
        RingMetrics.MovedAway.Add(1);
        return true;
    }

    private long _movedAway;

    /// <summary>
    /// Takes and releases every slot lock once: every write that checked its ownership before this call (under its
    /// slot's lock, with the ring of that moment) has been applied when it returns; every later one sees the ring of
    /// now. A handoff scans the table after this.
    /// </summary>
    private void WaitForOwnerDecisions()
    {
        foreach (var slotLock in _slotLocks)
        {
            slotLock.Enter();
            slotLock.Exit();
        }
    }

    private static Answer RegisterAnswer(AcceptorReply reply, int hops, string refusal) =>
        new(MsgValue.Nil, hops, reply.Ok, reply.Ok ? null : refusal, reply.Ok ? reply.Value : null, reply.Version, null, Versioned: true)
        {
            Accepted = reply.Accepted,
            Promised = reply.Promised,
            IsCopy = reply.IsCopy,
        };

    /// <summary>
    /// A versioned store at the owner (repair, anti-entropy, handoff, placement copy, or a py2p-path write): an accept
    /// at the ballot of its version. Taken when no higher ballot is promised or accepted here; a repeat of what is
    /// held is acknowledged; otherwise refused, saying what is held.
    /// </summary>
    /// <remarks>
    /// A <paramref name="handoff"/> (the interim owner handing back acceptor state it accepted while this node was
    /// away) replaces an entry this node loaded at start and has not confirmed since, whatever their ballots: it was
    /// accepted after this node went down, so after everything the loaded entry holds. When a key's positions were
    /// mostly on this node, its interim owner committed under ballots below the ones this node had used (it never
    /// knew them); by ballot, the loaded entry won and the writes made while it was down were lost (the crash-profile
    /// trace of seed 6449). The promise kept is the higher of the two, so no later ballot goes below either.
    /// </remarks>
    private Answer ApplyVersionedStore((HashMethod Method, BigInteger Position) slot, MsgValue value, EntryVersion version, byte[]? key, int hops, out bool applied,
        bool copy = false, bool handoff = false, string? sender = null)
    {
        value = value.Detached(); // before the lock, as in ApplyAccept
        lock (LockFor(slot))
        {
            if (!copy && !handoff && OwnedElsewhere(new RingPosition(slot.Position), sender))
            {
                applied = false;
                return Answer.Refused(hops, MovedAway);
            }

            _table.TryGetValue(slot, out var current);
            if (version == EntryVersion.Zero)
            {
                applied = false;
                return new Answer(MsgValue.Nil, hops, false, "a version must be above zero", null, current?.Version, null, Versioned: true);
            }

            if (handoff && current is { IsRestored: true, PromiseFromBeforeStart: true, HandedBack: false } && current.Version != version)
            {
                var promise = current.PromisedBallot > version ? current.PromisedBallot : version;
                PutEntry(slot, new StoredEntry(value, version, key ?? current.Key, Promised: promise, IsRestored: true, PromiseFromBeforeStart: true, HandedBack: true));
                applied = true;
                return new Answer(MsgValue.Nil, hops, true, null, MsgValue.True, version, null, Versioned: true);
            }

            var (updated, reply) = Acceptor.Accept(current, version, value, version, key, null, Interlocked.Read(ref _ballotFloor), learn: true,
                takenOver: current is not null && current.PromisedBallot > version && TakenOverJustNow(slot.Position));
            if (updated is not null && copy && !updated.IsCopy && updated.AcceptedBallot == version)
            {
                updated = updated with { IsCopy = true }; // a placement copy is a hint, not this position's acceptor state
            }
            else if (updated is not null && !copy && !updated.IsCopy && !updated.IsRestored)
            {
                // Repair, handoff or anti-entropy: a value some proposer accepted, perhaps older than one committed
                // since. A hint until a proposer's accept confirms it (see StoredEntry.IsRestored).
                updated = updated with { IsRestored = true };
            }

            if (updated is not null)
            {
                PutEntry(slot, updated);
            }

            applied = updated is not null && reply.Ok && updated.AcceptedBallot == version;
            var held = updated ?? current;
            return reply.Ok
                ? new Answer(MsgValue.Nil, hops, true, null, MsgValue.True, version, null, Versioned: true)
                : new Answer(MsgValue.Nil, hops, false, NewerHeld, null, held?.Version, null, Versioned: true)
                {
                    Accepted = reply.Accepted,
                    Promised = reply.Promised,
                };
        }
    }

    /// <summary>The refusal of a versioned store at an owner that holds (or promised) a newer ballot.</summary>
    private const string NewerHeld = "the owner holds or promised a newer version";

    /// <summary>Raises the ballot floor above the ballots of an entry about to be dropped, durably, before it goes.</summary>
    private void RaiseBallotFloor(StoredEntry dropped)
    {
        var counter = dropped.PromisedBallot.Counter;
        long floor;
        do
        {
            floor = Interlocked.Read(ref _ballotFloor);
            if (counter <= floor)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _ballotFloor, counter, floor) != floor);

        _store?.SaveBallotFloor(counter);
    }

    private int _background; // tracked background operations in flight
    private TaskCompletionSource? _backgroundDrained; // set once disposing waits for them

    /// <summary>
    /// Keeps background work a caller's operation started (placement-copy sends, a read's commit of hints) in view
    /// until it ends, so that disposing waits for it within a bound (a one-shot client's last write). A count, not a
    /// set of tasks: one is started per committed write of a key on at most two nodes.
    /// </summary>
    private void TrackBackground(Task work)
    {
        if (work.IsCompleted)
        {
            return;
        }

        Interlocked.Increment(ref _background);
        work.ContinueWith(static (_, s) => ((RingNode)s!).BackgroundEnded(), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void BackgroundEnded()
    {
        if (Interlocked.Decrement(ref _background) == 0)
        {
            Volatile.Read(ref _backgroundDrained)?.TrySetResult();
        }
    }

    /// <summary>Waits, within a bound, until no tracked background work is in flight (the placement copies of committed writes first of all).</summary>
    private async Task DrainBackgroundAsync()
    {
        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _backgroundDrained, drained); // a full fence: the count below is read after it is published
        if (Volatile.Read(ref _background) == 0)
        {
            return; // checked after the signal is in place: work that ends from now on finds it
        }

        try
        {
            await drained.Task.WaitAsync(BackgroundDrainBound, Options.Mesh.TimeProvider);
        }
        catch (TimeoutException)
        {
            // Hints: what did not go out in time is left to repair; disposing goes on.
        }
    }

    private static readonly TimeSpan BackgroundDrainBound = TimeSpan.FromSeconds(2);

    /// <summary>How a node's proposer reaches the acceptors of a key: requests routed to the positions' owners.</summary>
    private sealed class RingRegisterTransport(RingNode node) : IRegisterTransport
    {
        public string ProposerId => node.Id;

        public TimeProvider Time => node.Options.Mesh.TimeProvider;

        public void Committed(byte[] key, MsgValue value, EntryVersion version)
        {
            // Planned here (a few comparisons; most keys on three or more nodes need no copy), sent only when some
            // node keeps one: at once when every target is at hand, in the background when one must be dialled.
            if (version == EntryVersion.Zero || node.PlanPlacementCopies(key) is not { } plan)
            {
                return;
            }

            var copied = key.ToArray(); // the caller may reuse its array once the update returns
            if (!node.TrySendPlacementCopiesNow(copied, value, version, plan))
            {
                node.TrackBackground(Task.Run(() => node.SendPlacementCopiesAsync(copied, value, version, plan)));
            }
        }

        public string? AcceptorNode(byte[] key, int position) =>
            node.OwnerOf(KeyHashes.Position((HashMethod)position, key).Reduced, null)?.Id;

        public bool AcceptorAlive(string id) =>
            id == node.Id ? node._disposed == 0 && !node._stopping.IsCancellationRequested : node._members.TryGetValue(id, out var member) && member.IsStoring;

        public Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken)
        {
            var method = (HashMethod)position;
            return SendAsync(new PositionRequest(PrepareKind, method, KeyHashes.Position(method, key), Key: key, Ballot: ballot), cancellationToken);
        }

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken)
        {
            var method = (HashMethod)position;
            return SendAsync(new PositionRequest(AcceptKind, method, KeyHashes.Position(method, key), value, version, key, Ballot: ballot, Next: next), cancellationToken);
        }

        public Task<AcceptorReply?>[] AcceptAll(byte[] key, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken) =>
            node.SendAccepts(key, ballot, value, version, next, i => IRegisterTransport.SafeAcceptAsync(this, key, i, ballot, value, version, next, cancellationToken), cancellationToken);

        /// <summary>What the proposer hears from an answer: null for "no acceptor there (yet)", the acceptor's reply otherwise.</summary>
        internal static AcceptorReply? ReplyOf(Answer answer) =>
            answer.Error is PyOwnerHasNoRegister or NotServingYet or OwnerUnreachable or MovedAway
                ? null
                : new AcceptorReply(answer.Ok, answer.Result ?? MsgValue.Nil, answer.Version, answer.Accepted ?? EntryVersion.Zero, answer.Promised ?? EntryVersion.Zero, answer.IsCopy);

        private async Task<AcceptorReply?> SendAsync(PositionRequest request, CancellationToken cancellationToken)
        {
            try
            {
                var answer = await node.RouteAsync(request, cancellationToken, inlineAnswer: true);
                RingMetrics.LookupHops.Record(answer.Hops);
                if (node.Logger.IsEnabled(LogLevel.Trace))
                {
                    RingLog.ProposerHeard(node.Logger, node.Id, TraceText.Position(request.Method, request.Position), TraceText.Of(request), TraceText.Of(answer));
                }

                if (request.Kind == AcceptKind && !answer.Ok && answer.AfterResend)
                {
                    // An earlier attempt of this accept went out and was never answered: it may have been taken, and
                    // the position may have moved on since (later ballots), so that this attempt is refused. Read as
                    // a no, the proposer took its value for certainly not landed and applied its plain write a second
                    // time, after other writes that had followed the first (the crash-profile trace of seed 9041: a
                    // delete taken at one position, its answer lost, recovered by another proposer's compare-and-set,
                    // then applied again by its retry). Unheard: it may have landed.
                    return null;
                }

                return ReplyOf(answer); // null for "no acceptor there (yet)"
            }
            catch (Exception e) when (e is OperationCanceledException or ChordTimeoutException or MeshConnectException)
            {
                if (node.Logger.IsEnabled(LogLevel.Trace))
                {
                    RingLog.ProposerHeard(node.Logger, node.Id, TraceText.Position(request.Method, request.Position), TraceText.Of(request), e.GetType().Name);
                }

                return null;
            }
        }
    }
}
