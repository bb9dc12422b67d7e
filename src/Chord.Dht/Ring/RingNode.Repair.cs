using System.Collections.Concurrent;
using System.Collections.Immutable;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// Keeping five copies alive: re-replication after a crash, the anti-entropy sweep, and placement copies.
/// </summary>
/// <remarks>
/// <para><b>Placement guarantee.</b> A position's owner is the storing node nearest at or before it, so when the owner
/// crashes its ring predecessor takes the position over. When a node owns 3 or more of a key's 5 positions, it
/// keeps a copy of each of those entries on its predecessor, so a single crash never removes the majority of a
/// key's copies. When a key's positions fall on fewer than 3 distinct nodes, each owner keeps copies on its two
/// predecessors, so no two crashes remove every copy. Reads ask all five positions whenever one answers "nothing
/// here", so a single surviving copy is found and written back.</para>
/// <para><b>Re-replication.</b> When a storing member is found gone (its connection closed and it cannot be dialled),
/// every node holding one of a key's positions re-stores the newest version it has at each of the key's positions
/// the lost node owned; their new owners keep it if it is newer than what they have. Entries carry their key, which
/// is what lets any holder recompute the other positions.</para>
/// <para><b>Anti-entropy.</b> A periodic sweep, <see cref="RingOptions.AntiEntropyBatch"/> entries at a time, compares
/// each entry with the key's other positions and pushes the newest version where it is missing or older; it also
/// removes a tombstone once every position has the delete (or nothing).</para>
/// </remarks>
public sealed partial class RingNode
{
    private int _repairsInProgress;
    private int _antiEntropyRunning;
    private int _antiEntropyCursor;
    private long _crashRepairs;
    private long _antiEntropyRepairs;
    private long _placementCopies;

    /// <summary>A snapshot of this node's storage and repair counters.</summary>
    public RingStatistics GetStatistics() => new(
        StoredCount,
        _table.Values.Count(e => e.IsTombstone),
        Volatile.Read(ref _repairsInProgress),
        Interlocked.Read(ref _crashRepairs),
        Interlocked.Read(ref _antiEntropyRepairs),
        Interlocked.Read(ref _placementCopies))
    {
        RefusedInputs = Interlocked.Read(ref _refusedInputs),
        ReadsWidened = Interlocked.Read(ref _readsWidened),
        RetrievesAnswered = Interlocked.Read(ref _retrievesAnswered),
        MovedAway = Interlocked.Read(ref _movedAway),
    };

    /// <summary>
    /// Keeps copies of an entry this node owns where the position would go if this node crashed (see remarks): on
    /// its predecessor when it owns 3 or more of the key's positions, and on its two predecessors when the key's
    /// positions fall on fewer than 3 distinct nodes, so that no two crashes take every copy.
    /// </summary>
    private async Task KeepPlacementCopyAsync(HashMethod method, RingPosition position, MsgValue value, EntryVersion version, byte[] key)
    {
        if (!PlacementCopiesApply)
        {
            return;
        }

        var owners = KeyHashes.All(key).Select(p => OwnerOf(p.Reduced, null)?.Id).ToList();
        var copies = CopiesNeeded(owners.Distinct().Count(), owners.Count(o => o == Id));
        foreach (var target in CopyTargets(Neighbours(-1), copies).ToList())
        {
            var peer = Mesh.GetPeer(target.Id) ?? await Mesh.ConnectAsync(target.Address, target.Id, _stopping.Token);
            var copy = new PositionRequest(SubFlag.Store, method, position, value, version, key, Replica: true);
            await peer.WhisperOwningAsync(RequestPayload(copy, NewRequestId(), hops: 1)); // not acknowledged (the replica mark says so)
            Interlocked.Increment(ref _placementCopies);
            RingMetrics.PlacementCopies.Add(1);
        }
    }

    /// <summary>
    /// The placement copies of a value the register just committed, sent by its proposer (who knows the value, its
    /// version and the key's layout) instead of by each owner per accepted position: one <c>copies</c> frame per
    /// target node carrying every position that target keeps a copy of, and none at all for copies this node keeps
    /// itself. Same rule as <see cref="KeepPlacementCopyAsync"/>, applied from this node's view of the ring: an owner
    /// of 3 or more positions has them copied to its predecessor; when the positions fall on at most two nodes, each
    /// owner's are copied to its two predecessors. Only committed values are copied (a refused accept leaves no hint).
    /// </summary>
    private async Task SendPlacementCopiesAsync(byte[] key, MsgValue value, EntryVersion version, PlacementCopyPlan plan)
    {
        var positions = plan.Positions;
        var targets = plan.Targets;
        // Each target on its own: one that cannot be reached (or a frozen one whose queue is full) holds up no other.
        await Task.WhenAll(targets.Select(t => CopyToAsync(t.Value.Member, t.Value.Positions)));

        async Task CopyToAsync(RingMember member, List<int> indices)
        {
            try
            {
                var peer = member.Id == Id ? null : Mesh.GetPeer(member.Id) ?? await Mesh.ConnectAsync(member.Address, member.Id, _stopping.Token);
                await CopyTo(peer, indices, key, value, version, positions);
            }
            catch (MeshConnectException e)
            {
                RingLog.BackgroundUnreachable(Logger, e.Message); // the mesh logged the attempt in one line and backs off
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
            {
                // Stopping, or the connection closed under the send: the copy is a hint, repair covers the rest.
            }
        }
    }

    /// <summary>
    /// Sends the placement copies of a committed value on the writer's own path when every target is this node or a
    /// connected peer (the steady state): applied or queued at once, with no background task, no thread hop and no
    /// <c>Task.WhenAll</c> per write. False, with nothing sent, when a target must be dialled first: the caller sends
    /// them in the background (<see cref="SendPlacementCopiesAsync"/>). A queue that is full (a frozen peer) does not
    /// hold the writer: that send finishes in the background, tracked.
    /// </summary>
    private bool TrySendPlacementCopiesNow(byte[] key, MsgValue value, EntryVersion version, PlacementCopyPlan plan)
    {
        // Each target's connection looked up once: looked up again, one that closed in between would read as null,
        // which CopyTo takes for "this node keeps them".
        var targets = new (MeshPeer? Peer, List<int> Indices)[plan.Targets.Count];
        var n = 0;
        foreach (var (member, indices) in plan.Targets.Values)
        {
            MeshPeer? peer = null;
            if (member.Id != Id && (peer = Mesh.GetPeer(member.Id)) is null)
            {
                return false;
            }

            targets[n++] = (peer, indices);
        }

        foreach (var (peer, indices) in targets)
        {
            try
            {
                var sent = CopyTo(peer, indices, key, value, version, plan.Positions);
                if (!sent.IsCompletedSuccessfully)
                {
                    TrackBackground(sent.AsTask()); // a full queue: the send waits for room (it never throws: a close drops it)
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
            {
                // Stopping, or the connection closed under the send: the copy is a hint, repair covers the rest.
            }
        }

        return true;
    }

    /// <summary>The copies of one target: applied here (<paramref name="peer"/> null: this node keeps them) or one <c>copies</c> frame queued to it.</summary>
    private ValueTask CopyTo(MeshPeer? peer, List<int> indices, byte[] key, MsgValue value, EntryVersion version, RingPosition[] positions)
    {
        Interlocked.Add(ref _placementCopies, indices.Count);
        RingMetrics.PlacementCopies.Add(indices.Count);
        if (peer is null)
        {
            foreach (var i in indices)
            {
                ApplyLocally(new PositionRequest(SubFlag.Store, (HashMethod)i, positions[i], value, version, key, Replica: true), hops: 0);
            }

            return ValueTask.CompletedTask;
        }

        return peer.WhisperOwningAsync(CopiesPayload(key, value, version, indices, positions)); // not acknowledged: hints
    }

    /// <summary>
    /// Where the placement copies of a committed write of <paramref name="key"/> go (the placement rule over the ring
    /// of the moment), or null when none does: the common case of a key on three or more nodes, decided here, on the
    /// writer's path, without starting any background work.
    /// </summary>
    private PlacementCopyPlan? PlanPlacementCopies(byte[] key)
    {
        // Not PlacementCopiesApply: a proposer need not store (a client node, a one-shot `chord set`) to copy what it wrote.
        var ring = _ring;
        if (!Options.KeepPlacementCopies || ring.Length < 3)
        {
            return null;
        }

        // Each position's owner, and the first position of that owner's group (its positions, in method order).
        var positions = KeyHashes.All(key);
        var owners = new RingMember[positions.Length];
        var groupOf = new int[positions.Length];
        var held = new int[positions.Length]; // by a group's first position: how many positions its owner holds
        var distinct = 0;
        for (var i = 0; i < positions.Length; i++)
        {
            if (OwnerOf(ring, positions[i].Reduced, null) is not { } owner)
            {
                return null;
            }

            owners[i] = owner;
            groupOf[i] = i;
            for (var j = 0; j < i; j++)
            {
                if (owners[j].Id == owner.Id)
                {
                    groupOf[i] = groupOf[j];
                    break;
                }
            }

            distinct += groupOf[i] == i ? 1 : 0;
            held[groupOf[i]]++;
        }

        Dictionary<string, (RingMember Member, List<int> Positions)>? targets = null;
        for (var group = 0; group < positions.Length; group++)
        {
            if (groupOf[group] != group)
            {
                continue; // not the first position of its owner
            }

            foreach (var target in CopyTargets(PredecessorsOf(ring, owners[group]), CopiesNeeded(distinct, held[group])))
            {
                targets ??= new(StringComparer.Ordinal);
                if (!targets.TryGetValue(target.Id, out var entry))
                {
                    entry = (target, []);
                    targets[target.Id] = entry;
                }

                for (var j = group; j < positions.Length; j++)
                {
                    if (groupOf[j] == group)
                    {
                        entry.Positions.Add(j);
                    }
                }
            }
        }

        return targets is null ? null : new PlacementCopyPlan(positions, targets);
    }

    /// <summary>The positions of a key and, by node id, the node that keeps copies and which positions it keeps.</summary>
    private sealed record PlacementCopyPlan(RingPosition[] Positions, Dictionary<string, (RingMember Member, List<int> Positions)> Targets);

    /// <summary>
    /// The placement rule (see remarks): how many predecessors keep copies of the positions one owner holds, given how
    /// many distinct nodes own the key's five positions and how many of them this owner holds.
    /// </summary>
    private static int CopiesNeeded(int distinctOwners, int positionsOfOwner) => distinctOwners <= 2 ? 2 : positionsOfOwner >= 3 ? 1 : 0;

    /// <summary>
    /// The first <paramref name="copies"/> of an owner's <paramref name="predecessors"/> (nearest first) that keep its
    /// copies: never a py2p node, which does not own the copy and would forward it on as its own unversioned store.
    /// </summary>
    private IEnumerable<RingMember> CopyTargets(IEnumerable<RingMember> predecessors, int copies) =>
        predecessors.Where(n => !IsPy2pMember(n)).Take(copies);

    /// <summary><c>[copies, key, value, version, method, position, method, position, ...]</c> (PROTOCOL-EXTENSIONS.md).</summary>
    private static MsgValue[] CopiesPayload(byte[] key, MsgValue value, EntryVersion version, List<int> indices, RingPosition[] positions)
    {
        var payload = new MsgValue[4 + (2 * indices.Count)];
        payload[0] = (long)RingSubFlag.Copies;
        payload[1] = MsgValue.Bin(key);
        payload[2] = value;
        payload[3] = version.ToMsgValue();
        for (var j = 0; j < indices.Count; j++)
        {
            payload[4 + (2 * j)] = WireCache.MethodName((HashMethod)indices[j]);
            payload[5 + (2 * j)] = WireCache.PositionBin(positions[indices[j]].Value);
        }

        return payload;
    }

    /// <summary>
    /// A <c>copies</c> frame from one of our nodes: each listed position of the key is kept here as a placement copy
    /// (a hint, applied only where newer). A position that is not one of the key's own is refused with the frame.
    /// </summary>
    private void HandleCopies(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        if (p[1].Kind != MsgKind.Bin || !EntryVersion.TryRead(p[3], out var version)
            || version == EntryVersion.Zero || (p.Length - 4) % 2 != 0 || p.Length > 4 + (2 * 5))
        {
            LogRefusedOnce(from, "a copies frame whose key or version does not read; dropped");
            return;
        }

        var key = p[1].AsBytes().ToArray();
        var positions = KeyHashes.AllShared(key);
        var requests = new List<PositionRequest>((p.Length - 4) / 2);
        for (var at = 4; at < p.Length; at += 2)
        {
            if (p[at].Kind != MsgKind.Bin || !KeyHashes.TryParse(p[at].AsBytes().Span, out var method)
                || !TryReadPosition(p[at + 1], out var position) || position != positions[(int)method])
            {
                LogRefusedOnce(from, "a copies frame naming a position that is not one of its key's; dropped");
                return;
            }

            var request = new PositionRequest(SubFlag.Store, method, positions[(int)method], p[2], version, key, Replica: true);
            if (!WithinHeadroom(request))
            {
                LogRefusedOnce(from, HeadroomRefusal("copies frame"));
                return;
            }

            requests.Add(request);
        }

        foreach (var request in requests)
        {
            ApplyLocally(request, hops: 1);
        }
    }

    /// <summary>The storing members before <paramref name="member"/> on <paramref name="ring"/> (a snapshot), nearest first (not the member itself).</summary>
    private static IEnumerable<RingMember> PredecessorsOf(RingMember[] ring, RingMember member)
    {
        var at = Array.FindIndex(ring, m => m.Id == member.Id);
        if (at < 0)
        {
            yield break;
        }

        for (var i = 1; i < ring.Length; i++)
        {
            yield return ring[(at - i + ring.Length) % ring.Length];
        }
    }

    /// <summary>
    /// After the ring changed, re-applies the placement rule to every entry this node owns: a key whose positions
    /// now fall on fewer nodes needs copies that no store has made yet.
    /// </summary>
    private async Task RefreshPlacementCopiesAsync()
    {
        var owned = _table.Where(e => e.Value is { Key: not null, Version: not null }
            && OwnerOf(new RingPosition(e.Key.Position).Reduced, null)?.Id == Id).ToList();
        await Parallel.ForEachAsync(owned, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (entry, _) =>
        {
            try
            {
                await KeepPlacementCopyAsync(entry.Key.Method, new RingPosition(entry.Key.Position), entry.Value.Value, entry.Value.Version!.Value, entry.Value.Key!);
            }
            catch (Exception e) when (e is MeshConnectException or OperationCanceledException)
            {
                // The next change or sweep tries again.
            }
        });
    }

    /// <summary>Re-creates, at their new owners, the positions a vanished member owned (see remarks).</summary>
    private async Task RepairAfterLossAsync(RingMember lost)
    {
        try
        {
            var work = new List<PositionRequest>();

            // Copies count: a key whose positions were all on the lost node may have no other holder than the nodes
            // that kept its copies, and its new owner need not be one of them (the crash-profile trace of seed 5230).
            // What they bring is a hint at the new owner (a restored entry), which a read commits before it decides.
            var versioned = NewestEntriesByKey(includeCopies: true);
            foreach (var (key, entry) in versioned)
            {
                var positions = KeyHashes.All(key);
                foreach (var method in KeyHashes.Methods)
                {
                    if (LostOwned(lost, positions[(int)method]))
                    {
                        work.Add(new PositionRequest(SubFlag.Store, method, positions[(int)method], entry.Value, entry.Version, key));
                    }
                }
            }

            using var deadline = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RepairTimeout, _stopping.Token);

            // A restore whose new owner cannot be reached (another node that went down with the lost one, not removed
            // yet) is sent again once the directory has moved on, within the repair's time: with two nodes down at
            // once, the only holders of a key may be about to go too, and the anti-entropy sweep comes too late.
            for (var round = 0; work.Count > 0 && !deadline.IsCancellationRequested; round++)
            {
                if (round > 0)
                {
                    try
                    {
                        await Task.Delay(Options.StabilizeInterval, Options.Mesh.TimeProvider, deadline.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break; // the repair's time is up: the anti-entropy sweep takes over
                    }
                }

                var again = new ConcurrentBag<PositionRequest>();
                await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (request, _) =>
                {
                    try
                    {
                        if (!await RestoreAsync(request, deadline.Token))
                        {
                            again.Add(request);
                        }
                    }
                    catch (Exception e) when (e is OperationCanceledException or ChordTimeoutException)
                    {
                        // The anti-entropy sweep retries what the deadline cut short (an unreachable owner: RestoreAsync says so).
                    }
                });
                work = [.. again];
            }

            await RepairUnversionedKeysAsync(lost, versioned, deadline.Token);
            await RefreshPlacementCopiesAsync();
        }
        finally
        {
            Interlocked.Decrement(ref _repairsInProgress);
        }
    }

    /// <summary>
    /// True when this node should restore <paramref name="key"/>'s lost positions: it now owns one, or one now falls
    /// on a py2p node (which repairs nothing) and this node is the <paramref name="deputy"/> for py2p owners.
    /// </summary>
    private bool ShouldRestoreLostPositions(RingMember lost, byte[] key, bool deputy) =>
        KeyHashes.All(key).Any(p => LostOwned(lost, p) && OwnerOf(p.Reduced, null) is { } owner
            && (owner.Id == Id || (deputy && IsPy2pMember(owner))));

    /// <summary>The storing node of ours with the lowest id restores for py2p owners: one node, not every one.</summary>
    private bool IsDeputyForPy2pOwners() =>
        _members.Values.Where(m => m.IsStoring && !IsPy2pMember(m)).All(m => string.CompareOrdinal(m.Id, Id) >= 0);

    /// <summary>
    /// Routes one re-creating store to its owner and counts it when the owner took it. False when it reached no owner
    /// (the owner cannot be dialled, or does not serve yet): worth sending again once the directory has moved on.
    /// </summary>
    private async Task<bool> RestoreAsync(PositionRequest request, CancellationToken deadline)
    {
        Answer answer;
        try
        {
            answer = await RouteAsync(request, deadline);
        }
        catch (MeshConnectException)
        {
            return false; // its owner is gone too, and not removed yet
        }

        if (answer.Ok)
        {
            Interlocked.Increment(ref _crashRepairs);
            RingMetrics.CrashRepairs.Add(1);
        }

        return !AppliedNowhere(answer);
    }

    /// <summary>True when <paramref name="lost"/> was the owner of <paramref name="position"/>: nearer to it than its owner now.</summary>
    private bool LostOwned(RingMember lost, RingPosition position)
    {
        var target = position.Reduced;
        var owner = OwnerOf(target, null);
        return owner is null || lost.Position.DistanceTo(target) < owner.Position.DistanceTo(target);
    }

    /// <summary>
    /// Re-creates the lost positions of keys py2p wrote (entries without a version: py2p keeps no replicas and its
    /// <c>close()</c> hands nothing off). The value is the one most of the key's surviving positions hold, stored as
    /// py2p stores, without a version, so any later write of either kind supersedes it; a tie leaves the key alone.
    /// A key with a versioned answer (our write) gets that write re-sent at the lost positions instead.
    /// </summary>
    private async Task RepairUnversionedKeysAsync(RingMember lost, Dictionary<byte[], StoredEntry> versioned, CancellationToken deadline)
    {
        if (_table.Values.Any(e => e.Version is null && e.HasValue && e.Key is null))
        {
            // A notify can overtake the stores it announces (they go to owners, it is broadcast): adopt the keys now.
            foreach (var known in _keys.Keys)
            {
                AdoptKey(known);
            }
        }

        // The keys this node holds a py2p-written position of, and the announced keys of which this node is now the
        // owner of a lost position (or the deputy of its py2p owner): those may have no other holder of ours.
        var deputy = IsDeputyForPy2pOwners();
        var keys = _table.Values
            .Where(e => e is { Version: null, HasValue: true, IsCopy: false, Key: not null } && !versioned.ContainsKey(e.Key!))
            .Select(e => e.Key!)
            .Concat(_keys.Keys.Where(k => !versioned.ContainsKey(k) && ShouldRestoreLostPositions(lost, k, deputy)))
            .Distinct(ByteArrayComparer.Instance)
            .ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (key, _) =>
        {
            try
            {
                var positions = KeyHashes.All(key);
                var lostMethods = KeyHashes.Methods.Where(m => LostOwned(lost, positions[(int)m])).ToList();
                if (lostMethods.Count == 0)
                {
                    return;
                }

                var answers = await SendToPositionsAsync(key, (method, position) => new PositionRequest(SubFlag.Retrieve, method, position), deadline);
                if (answers.Where(a => a is { Version: not null, IsCopy: false }).MaxBy(a => a!.Version!.Value) is { } newest)
                {
                    // Our write, held elsewhere: its holders push it, but one whose view lagged the loss may not have.
                    // A versioned store is taken only where it is newer, so sending it again is safe.
                    foreach (var method in lostMethods.Where(m => answers[(int)m]?.Version is not { } v || v < newest.Version!.Value))
                    {
                        await RestoreAsync(new PositionRequest(SubFlag.Store, method, positions[(int)method], newest.Value, newest.Version, key), deadline);
                    }

                    return;
                }

                if (answers.Any(a => a?.Version is not null))
                {
                    return; // only placement copies of our write: hints, never spread as a position's state
                }

                var ranked = KeyHashes.Methods.Where(m => !lostMethods.Contains(m) && answers[(int)m] is { Value.IsNil: false })
                    .GroupBy(m => answers[(int)m]!.Value)
                    .Select(g => (Value: g.Key, Count: g.Count()))
                    .OrderByDescending(g => g.Count)
                    .ToList();
                if (ranked.Count == 0 || (ranked.Count > 1 && ranked[1].Count == ranked[0].Count))
                {
                    return; // the survivors agree on no value: nothing to re-create it from
                }

                foreach (var method in lostMethods.Where(m => answers[(int)m]?.Value.Equals(ranked[0].Value) != true))
                {
                    await RestoreAsync(new PositionRequest(SubFlag.Store, method, positions[(int)method], ranked[0].Value, Version: null, Key: key), deadline);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ChordTimeoutException or MeshConnectException)
            {
                // Cut short by the repair deadline: a read of the key still finds the surviving majority, if any.
            }
        });
    }

    /// <summary>
    /// One anti-entropy sweep over the next <see cref="RingOptions.AntiEntropyBatch"/> keys this node holds; returns
    /// how many positions it repaired. Runs on a timer; tests call it directly.
    /// </summary>
    public async Task<int> RunAntiEntropyAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _antiEntropyRunning, 1) != 0)
        {
            return 0;
        }

        Interlocked.Increment(ref _repairsInProgress);
        try
        {
            var keys = NewestEntriesByKey(includeCopies: true).ToList();
            if (keys.Count == 0)
            {
                return 0;
            }

            var start = _antiEntropyCursor % keys.Count;
            var batch = keys.Skip(start).Concat(keys.Take(start)).Take(Options.AntiEntropyBatch).ToList();
            _antiEntropyCursor = start + batch.Count;
            var repaired = 0;
            foreach (var (key, mine) in batch)
            {
                cancellationToken.ThrowIfCancellationRequested();
                repaired += await SweepKeyAsync(key, mine, cancellationToken);
            }

            return repaired;
        }
        finally
        {
            Interlocked.Decrement(ref _repairsInProgress);
            Volatile.Write(ref _antiEntropyRunning, 0);
        }
    }

    private async Task<int> SweepKeyAsync(byte[] key, StoredEntry mine, CancellationToken cancellationToken)
    {
        using var deadline = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RequestTimeout, cancellationToken);
        var answers = await SendToPositionsAsync(key, (method, position) => new PositionRequest(SubFlag.Retrieve, method, position), deadline.Token);
        if (answers.Any(a => a is { Versioned: false }))
        {
            return 0; // py2p owners take part: their rules, not ours
        }

        var newest = answers.Where(a => a?.Version is not null).Select(a => (a!.Value, Version: a.Version!.Value, a.Key))
            .Append((mine.Value, Version: mine.Version!.Value, Key: (byte[]?)key))
            .MaxBy(a => a.Version);
        var positions = KeyHashes.All(key);
        var repaired = 0;
        for (var i = 0; i < 5; i++)
        {
            var answer = answers[i];
            if (answer is null)
            {
                continue; // no answer: nothing to compare; the next sweep tries again
            }

            // An empty position is filled only by an owner of one of the key's positions: a placement copy may be
            // older than a delete whose tombstone was already collected, and must not bring the value back.
            var lags = answer.Version is not { } held ? !newest.Value.IsNil && OwnsAnyPosition(key) : held < newest.Version;
            if (lags)
            {
                var request = new PositionRequest(SubFlag.Store, (HashMethod)i, positions[i], newest.Value, newest.Version, key);
                Answer stored;
                try
                {
                    stored = await RouteAsync(request, deadline.Token);
                }
                catch (MeshConnectException)
                {
                    continue; // its owner cannot be reached: the next sweep tries again
                }

                if (stored.Ok)
                {
                    repaired++;
                    Interlocked.Increment(ref _antiEntropyRepairs);
                    RingMetrics.AntiEntropyRepairs.Add(1);
                }
            }
        }

        // A tombstone is removed once all five positions answered with the delete (or nothing): no copy is left
        // that it would need to outrank.
        if (newest.Value.IsNil && answers.All(a => a is not null && (a.Version is null || a.Version == newest.Version)))
        {
            // Every entry of the key that the delete outranks goes: the tombstone, and any older copy.
            foreach (var (slot, entry) in _table.Where(e => e.Value.Key is { } k && k.AsSpan().SequenceEqual(key)
                && e.Value.Version is { } v && v <= newest.Version).ToList())
            {
                // The floor first: a position without state must refuse every ballot this entry promised or took.
                RaiseBallotFloor(entry);
                if (RemoveEntryIfUnchanged(slot, entry))
                {
                    RingMetrics.TombstonesCollected.Add(1);
                }
            }
        }

        return repaired;
    }

    /// <summary>Whether the placement rule can ask for copies at all; checked before any work on the store path.</summary>
    private bool PlacementCopiesApply => Options.KeepPlacementCopies && _storing && _ring.Length >= 3;

    private bool OwnsAnyPosition(byte[] key) => KeyHashes.All(key).Any(p => OwnerOf(p.Reduced, null)?.Id == Id);

    /// <summary>For every key this node holds a versioned entry of, the newest such entry.</summary>
    /// <param name="includeCopies">
    /// Count placement copies (the anti-entropy sweep, which compares with the positions and collects tombstones). Off
    /// for re-replication: a copy is a hint that may be older than the key's value; a read finds and commits it, but a
    /// crash repair never spreads one as a position's own state.
    /// </param>
    private Dictionary<byte[], StoredEntry> NewestEntriesByKey(bool includeCopies)
    {
        var newest = new Dictionary<byte[], StoredEntry>(ByteArrayComparer.Instance);
        foreach (var entry in _table.Values)
        {
            if (entry.Key is { } key && entry.Version is { } version && (includeCopies || !entry.IsCopy)
                && (!newest.TryGetValue(key, out var known) || known.Version!.Value < version))
            {
                newest[key] = entry;
            }
        }

        return newest;
    }
}
