using System.Collections.Concurrent;
using System.Numerics;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Ring;

/// <summary>The ring's members, the connections kept to them (neighbours and fingers), join and unjoin.</summary>
public sealed partial class RingNode
{
    // 1: the extensions of PROTOCOL-EXTENSIONS.md; 2: and the accepts of one round in one frame (RingSubFlag.Accepts);
    // 3: and a read's requests to one node in one frame (RingSubFlag.Retrieves).
    internal const int ExtensionVersion = 3;

    private static readonly BigInteger[] PowersOfTwo = Enumerable.Range(0, 384).Select(i => BigInteger.One << i).ToArray();

    private readonly ConcurrentDictionary<string, RingMember> _members = new(StringComparer.Ordinal);

    // Per peer: completes with true once its hello says it speaks our extensions, false once its chord meta
    // arrives first (a py2p node). Our nodes send hello before meta, and a connection keeps order.
    private readonly ConcurrentDictionary<string, TaskCompletionSource<bool>> _capabilities = new(StringComparer.Ordinal);
    private readonly Lock _membershipLock = new();
    private readonly ConcurrentDictionary<MeshPeer, byte> _introduced = new(); // connections our hello went out on
    private volatile RingMember[] _ring = []; // storing members, this node included when storing, by position
    private volatile bool _ringHasEpochless; // some member of _ring but this node has no epoch: it may be a py2p node
    private volatile HashSet<string> _wanted = new(StringComparer.Ordinal);
    private volatile bool _storing;
    // Starts at the clock's milliseconds, so a node restarted under the same id (its salt kept in its data directory)
    // announces an epoch above any it had before, and news of it is not taken for old news (see _departed).
    private long _epoch = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    // Guards _storing and _epoch together: an entry for this node must never pair one state with the other's epoch.
    // Read apart, a hello built during a join said "leeching" at the join's new epoch; its peers then refused the
    // join's own "storing" at that same epoch as old news and kept the node as a client for good (seen in CI: a
    // 64-node ring lacking one storing member at 37 nodes for ten minutes, and again in RingMembershipTests).
    private readonly Lock _selfLock = new();

    // Members removed, with the epoch they had and when: relayed news of a departed member at that epoch or older is
    // stale (a peer's directory that has not caught up yet) and must not bring it back. First-hand news (its own
    // hello or chord meta) and a newer epoch do. Forgotten after DepartedMemory.
    // ProbedAt: when it was last dialled to check that it really left (ShouldProbeDeparted); null: not yet.
    private readonly ConcurrentDictionary<string, (long Epoch, long At, long? ProbedAt)> _departed = new(StringComparer.Ordinal);
    private static readonly TimeSpan DepartedMemory = TimeSpan.FromMinutes(10);
    private long _directoryVersion; // bumped by every change of the directory or of this node's own entry
    private volatile DigestCache? _digest;
    private int _stabilizeScheduled;

    /// <summary>The storing members this node is connected to (py2p's <c>data_storing</c>).</summary>
    public IReadOnlyCollection<RingMember> StoringPeers =>
        [.. _members.Values.Where(m => m.IsStoring && Mesh.GetPeer(m.Id) is not null)];

    /// <summary>Every member this node knows of, storing or not, itself excluded.</summary>
    public IReadOnlyCollection<RingMember> Members => [.. _members.Values];

    /// <summary>This node as a member.</summary>
    public RingMember Self
    {
        get
        {
            lock (_selfLock)
            {
                return new(Id, Mesh.Address, _storing, _epoch);
            }
        }
    }

    /// <summary>The storing node after this one on the ring (its successor), or null when it knows none.</summary>
    public RingMember? Next => Neighbours(+1).FirstOrDefault();

    /// <summary>The storing node before this one on the ring (its predecessor), or null when it knows none.</summary>
    public RingMember? Prev => Neighbours(-1).FirstOrDefault();

    /// <summary>The node responsible for <paramref name="position"/>: the storing node nearest at or before it.</summary>
    public RingMember? Find(RingPosition position) => OwnerOf(position.Reduced, null);

    /// <summary>The storing node nearest at or after <paramref name="position"/> (py2p's <c>find_prev</c>).</summary>
    public RingMember? FindPrev(RingPosition position)
    {
        var ring = _ring;
        if (ring.Length == 0)
        {
            return null;
        }

        var target = position.Reduced;
        return ring.MinBy(m => target.DistanceTo(m.Position));
    }

    /// <summary>
    /// Turns this node storing (py2p's <c>join</c>): it tells its peers and the ring, and the current owners hand it
    /// the entries it now owns.
    /// </summary>
    public async Task JoinAsync()
    {
        if (_storing)
        {
            return;
        }

        long epoch;
        lock (_selfLock)
        {
            _storing = true;
            _serving = false;
            epoch = ++_epoch;
        }

        RebuildRing();
        RingLog.Membership(Logger, Id, "joined");
        await AnnounceSelfAsync();
        await FenceAfterJoinAsync(epoch);
    }

    /// <summary>
    /// Turns this node leeching (py2p's <c>unjoin</c>): it tells the ring, then re-stores every entry it held
    /// toward its new owner before dropping it. Entries that could not be placed stay, and the exception
    /// says how many; calling again retries them.
    /// </summary>
    public async Task UnjoinAsync(CancellationToken cancellationToken = default)
    {
        if (_storing)
        {
            lock (_selfLock)
            {
                _storing = false;
                _serving = false;
                _epoch++;
            }

            RebuildRing();
            RingLog.Membership(Logger, Id, "left");
            await AnnounceSelfAsync();
        }

        if (_ring.Length == 0 && !_table.IsEmpty)
        {
            throw new ChordWriteException(
                $"No other storing node is known, so the {_table.Count} entries this node holds have nowhere to go; they stay here until a node joins and UnjoinAsync is called again.", 0);
        }

        var failed = await MoveEntriesAsync(_ => true, cancellationToken);
        if (failed > 0)
        {
            throw new ChordWriteException($"Unjoin placed all but {failed} entries; call UnjoinAsync again to retry them.", 0);
        }
    }

    /// <summary>
    /// Closes the connection least useful to routing: one that is neither a ring neighbour nor a finger. Returns
    /// false when every connection is useful.
    /// </summary>
    public bool DisconnectLeastEfficient()
    {
        var wanted = _wanted;
        var victim = Mesh.Peers
            .Where(p => p.Id is not null && !wanted.Contains(p.Id))
            .MinBy(p => p.FramesIn + p.FramesOut);
        if (victim is null)
        {
            return false;
        }

        victim.Close();
        return true;
    }

    private async Task AnnounceSelfAsync()
    {
        await Mesh.BroadcastPayloadAsync((long)RingSubFlag.Member, MemberEntry(Self));
        var meta = Mesh.CreateMessage(MainFlag.Whisper, (long)SubFlag.Handshake, _storing ? "0" : "1");
        foreach (var peer in _introduced.Keys)
        {
            // Only connections our hello went out on: chord meta before hello reads as "a py2p node".
            await peer.SendAsync(meta);
        }
    }

    private static MsgValue MemberEntry(RingMember member) =>
        MsgValue.Array(MsgValue.Array(member.Address.Host, member.Address.Port), MsgValue.BinAscii(member.Id), member.IsStoring, member.Epoch);

    private static bool TryReadMember(MsgValue entry, out RingMember member)
    {
        member = null!;
        if (entry.Kind != MsgKind.Array || entry.Count != 4)
        {
            return false;
        }

        var parts = entry.AsArray();
        if (parts[0].Kind != MsgKind.Array || parts[0].Count != 2 || parts[1].Kind != MsgKind.Bin || parts[2].Kind != MsgKind.Bool
            || parts[3].Kind != MsgKind.Int)
        {
            return false;
        }

        var address = parts[0].AsArray();
        if (address[0].Kind != MsgKind.Str || !address[1].TryGetInt32(out var port) || !Base58.TryDecode(parts[1].AsAscii(), out _))
        {
            return false;
        }

        member = new RingMember(parts[1].AsAscii(), new PeerAddress(address[0].AsString(), port), parts[2].AsBool(), parts[3].AsInt64());
        return true;
    }

    /// <summary>Adds or updates a member; newer epochs win, <paramref name="force"/> (first-hand news) always does.</summary>
    private void MergeMember(RingMember member, bool force = false) => MergeMembers([(member, force)]);

    /// <summary>Merges many members under one lock and one rebuild of the ring.</summary>
    private void MergeMembers(IEnumerable<(RingMember Member, bool Force)> updates)
    {
        List<RingMember>? turnedStoring = null;
        List<RingMember>? probe = null;
        var changed = false;
        lock (_membershipLock)
        {
            foreach (var (member, force) in updates)
            {
                if (member.Id == Id)
                {
                    continue;
                }

                _members.TryGetValue(member.Id, out var known);
                if (known is not null && !force && member.Epoch <= known.Epoch)
                {
                    continue;
                }

                if (known is null && !force && _departed.TryGetValue(member.Id, out var departed) && member.Epoch <= departed.Epoch)
                {
                    // Relayed news from before its departure. But the departure may have been a false report that the
                    // member never heard (so it never announced a newer epoch): then every directory still lists it at
                    // that epoch, ours refuses it for DepartedMemory, and the ring stays split for minutes. Ask the
                    // member itself, at most once a stabilize interval: if it is alive, its own hello brings it back.
                    if (ShouldProbeDeparted(member.Id, departed))
                    {
                        (probe ??= []).Add(member);
                    }

                    continue;
                }

                _departed.TryRemove(member.Id, out _);

                if (known is not null && known.IsStoring == member.IsStoring && known.Address == member.Address && known.Epoch == member.Epoch)
                {
                    continue;
                }

                _members[member.Id] = member;
                changed = true;
                if (member.IsStoring && known?.IsStoring != true)
                {
                    (turnedStoring ??= []).Add(member);
                }
            }

            if (changed)
            {
                RebuildRing();
            }
        }

        foreach (var member in probe ?? [])
        {
            if (_disposed != 0)
            {
                break;
            }

            if (Mesh.GetPeer(member.Id) is { } connected)
            {
                // Connected already (its hello came before the departure mark): our digest differs from its directory,
                // so it answers with its hello, which is first-hand.
                connected.TryEnqueue(DigestMessage(isReply: false));
            }
            else
            {
                Mesh.DialInBackground(member.Address, member.Id, fromPeersList: true); // a failure is news to nobody: Debug
            }
        }

        if (turnedStoring is not null && _storing)
        {
            foreach (var member in turnedStoring)
            {
                RunInBackground(() => HandOffToAsync(member));
            }
        }

        if (changed)
        {
            RequestStabilize();
        }
    }

    /// <summary>
    /// True at most once per <see cref="RingOptions.StabilizeInterval"/> for a departed member that peers still list:
    /// the caller dials it to learn whether its departure was real. Records the probe in the mark (the departure's own
    /// time, <c>At</c>, stays as it was: the mark is forgotten on schedule). Called under the membership lock.
    /// </summary>
    private bool ShouldProbeDeparted(string id, (long Epoch, long At, long? ProbedAt) departed)
    {
        var now = Options.Mesh.TimeProvider.GetTimestamp();
        if (departed.ProbedAt is { } last && Options.Mesh.TimeProvider.GetElapsedTime(last, now) < Options.StabilizeInterval)
        {
            return false;
        }

        _departed[id] = departed with { ProbedAt = now };
        return true;
    }

    private void RemoveMember(string id, string reason)
    {
        RingMember? removed;
        lock (_membershipLock)
        {
            if (!_members.TryRemove(id, out removed))
            {
                return;
            }

            _departed[id] = (removed.Epoch, Options.Mesh.TimeProvider.GetTimestamp(), null);
            ForgetLiveness(id);
            _handoffGates.TryRemove(id, out _); // one still held goes on; nothing more is handed to a departed member
            if (Mesh.GetPeer(id) is null && _capabilities.TryRemove(id, out var capability))
            {
                capability.TrySetCanceled();
            }

            RebuildRing();
            if (removed.IsStoring)
            {
                NoteTakeover(removed);
            }
        }

        RingLog.MemberGone(Logger, id, reason);
        RequestStabilize();
        if (removed.IsStoring && _disposed == 0)
        {
            Interlocked.Increment(ref _repairsInProgress); // counted from now, so "no repair in progress" never comes early
            RunInBackground(() => RepairAfterLossAsync(removed));
        }
    }

    private void RebuildRing()
    {
        lock (_membershipLock)
        {
            var storing = _members.Values.Where(m => m.IsStoring);
            if (_storing)
            {
                storing = storing.Append(Self);
            }

            RingMember[] ring = [.. storing.OrderBy(m => m.Position)];
            if (_storing)
            {
                MarkGainedPositions(_ring, ring); // before the new ring routes those positions here
            }

            // The flag goes up before a ring with a py2p member is published and down after one without is, so a
            // reader that finds it down (RegisterServes) may take any ring it could have read just before.
            var epochless = Array.Exists(ring, m => m.Epoch < 0 && m.Id != Id);
            if (epochless)
            {
                _ringHasEpochless = true;
            }

            _ring = ring;
            _ringHasEpochless = epochless;
            Interlocked.Increment(ref _directoryVersion);
            if (Logger.IsEnabled(LogLevel.Trace))
            {
                RingLog.RingRebuilt(Logger, Id, string.Join(" ", ring.Select(m => $"{m.Id}@{TraceText.Short(m.Position)}")));
            }
        }
    }

    /// <summary>
    /// Marks what this node holds at the positions it owns on <paramref name="after"/> but did not on
    /// <paramref name="before"/> (a predecessor left, or this node joined) as it marks what it loads at start: a value is
    /// a hint and a promise is from before. Such an entry is what was left from an earlier time this node owned the
    /// position (a handoff that did not go through, a join that came back): another owner accepted there since, so it
    /// is not this position's acceptor state: counted as the position's own, it could make a read decide on an old
    /// value. Called under the membership lock.
    /// </summary>
    private void MarkGainedPositions(RingMember[] before, RingMember[] after)
    {
        if (_table.IsEmpty || !CanGainPositions(before, after))
        {
            return;
        }

        foreach (var (slot, entry) in _table)
        {
            if (entry.IsRestored && entry.PromiseFromBeforeStart)
            {
                continue;
            }

            var position = new RingPosition(slot.Position).Reduced;
            if (OwnerOf(after, position, null)?.Id != Id || OwnerOf(before, position, null)?.Id == Id)
            {
                continue;
            }

            lock (LockFor(slot))
            {
                if (_table.TryGetValue(slot, out var current) && !current.IsCopy)
                {
                    _table[slot] = current.AsLoadedAtStart(); // the marks live in memory only: nothing to write
                }
            }
        }
    }

    /// <summary>
    /// False when no position can have become this node's: it was on the ring before and nobody left it (a member that
    /// only joined, or announced a new epoch, takes positions away and gives none). Spares the table scan of
    /// <see cref="MarkGainedPositions"/> on most rebuilds.
    /// </summary>
    private bool CanGainPositions(RingMember[] before, RingMember[] after)
    {
        if (!Array.Exists(before, m => m.Id == Id))
        {
            return true; // this node joined: its whole range is new to it
        }

        var now = new HashSet<string>(after.Length, StringComparer.Ordinal);
        foreach (var member in after)
        {
            now.Add(member.Id);
        }

        return !Array.TrueForAll(before, m => now.Contains(m.Id));
    }

    private bool IsStoringMember(string id, out RingMember member)
    {
        if (_members.TryGetValue(id, out member!) && member.IsStoring && CapabilityKnown(id))
        {
            return true;
        }

        member = null!;
        return false;
    }

    /// <summary>The storing member nearest at or before <paramref name="target"/> (reduced), skipping <paramref name="excluded"/>.</summary>
    private RingMember? OwnerOf(RingPosition target, IReadOnlySet<string>? excluded) => OwnerOf(_ring, target, excluded);

    /// <summary>The owner on a snapshot of the ring (several lookups that must agree with each other).</summary>
    private static RingMember? OwnerOf(RingMember[] ring, RingPosition target, IReadOnlySet<string>? excluded)
    {
        if (ring.Length == 0)
        {
            return null;
        }

        // The greatest position <= target, wrapping to the greatest overall.
        int lo = 0, hi = ring.Length - 1, found = ring.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            if (ring[mid].Position <= target)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        if (ring[found].Position > target)
        {
            found = ring.Length - 1;
        }

        for (var i = 0; i < ring.Length; i++)
        {
            var candidate = ring[(found - i + ring.Length) % ring.Length];
            if (excluded is null || !excluded.Contains(candidate.Id))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The storing members after (+1) or before (-1) this node, nearest first, this node excluded.</summary>
    private IEnumerable<RingMember> Neighbours(int direction)
    {
        var ring = _ring;
        var n = ring.Length;
        if (n == 0)
        {
            yield break;
        }

        // The index of the first member after our position (or of ourselves when storing).
        int lo = 0, hi = n;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (ring[mid].Position <= Position)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        var start = direction > 0 ? lo : lo - 1;
        for (var i = 0; i < n; i++)
        {
            var member = ring[(((start + (direction * i)) % n) + n) % n];
            if (member.Id != Id)
            {
                yield return member;
            }
        }
    }

    /// <summary>Schedules one <see cref="Stabilize"/>; bursts of membership changes coalesce into a single run.</summary>
    private void RequestStabilize()
    {
        if (Interlocked.Exchange(ref _stabilizeScheduled, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                Volatile.Write(ref _stabilizeScheduled, 0);
                Stabilize();
            }, null);
        }
    }

    /// <summary>
    /// Dials the connections routing needs: <see cref="RingOptions.NeighbourCount"/> neighbours each way and the
    /// owners of <c>id + 2^i</c>. Runs on a timer and after every membership change.
    /// </summary>
    private void Stabilize()
    {
        if (_disposed != 0 || Mesh.Address.Port == 0)
        {
            return;
        }

        try
        {
            var wanted = new HashSet<string>(StringComparer.Ordinal);
            foreach (var m in Neighbours(+1).Take(Options.NeighbourCount).Concat(Neighbours(-1).Take(Options.NeighbourCount)))
            {
                wanted.Add(m.Id);
            }

            if (_ring.Length > 0)
            {
                foreach (var power in PowersOfTwo)
                {
                    var owner = OwnerOf(Position.Add(power), null);
                    if (owner is not null && owner.Id != Id)
                    {
                        wanted.Add(owner.Id);
                    }
                }
            }

            _wanted = wanted;
            foreach (var id in wanted)
            {
                if (Mesh.GetPeer(id) is null && _members.TryGetValue(id, out var member))
                {
                    Mesh.DialInBackground(member.Address, id);
                }
            }

            ExpireRelays();
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
        {
            // Stopping.
        }
    }

    /// <summary>
    /// Membership anti-entropy, once per <see cref="RingOptions.StabilizeInterval"/>: a digest of our directory to one
    /// connected peer of ours picked at random; where the directories differ, the peers exchange them
    /// (<see cref="HandleDigest"/>). Member and gone broadcasts are flooded once; a node that misses one (a
    /// connection closed mid-flood, a duplicate connection dropped with the frames on it) would otherwise keep a
    /// stale directory for as long as its connections last. With one digest per node per interval, a change reaches
    /// every node in about log₂N intervals even when its broadcast was lost, and a converged ring exchanges 16-byte
    /// digests only. Entries merge by epoch, and a departed member is not brought back by a peer that has not heard
    /// of its departure yet.
    /// </summary>
    private void GossipMembership()
    {
        if (_disposed != 0)
        {
            return;
        }

        MeshPeer? chosen = null;
        var seen = 0;
        foreach (var peer in Mesh.RoutingSnapshot)
        {
            // Ours only (py2p peers know no digest), picked uniformly by reservoir sampling.
            if (peer.Id is { } id && !peer.IsClosed && _introduced.ContainsKey(peer) && SpeaksExtensionsKnown(id) && Random.Shared.Next(++seen) == 0)
            {
                chosen = peer;
            }
        }

        if (chosen is not null)
        {
            chosen.TryEnqueue(DigestMessage(isReply: false));
            RingMetrics.MembershipGossip.Add(1);
        }

        var forgetBefore = Options.Mesh.TimeProvider.GetTimestamp() - (long)(DepartedMemory.TotalSeconds * Options.Mesh.TimeProvider.TimestampFrequency);
        foreach (var (id, departed) in _departed)
        {
            if (departed.At < forgetBefore)
            {
                _departed.TryRemove(id, out _);
            }
        }
    }

    /// <summary>A peer's directory digest: when ours differs, send our directory, and (to a first digest) ours back.</summary>
    private void HandleDigest(MeshPeer from, ReadOnlySpan<byte> theirs, bool isReply)
    {
        if (from.Id is null || !_introduced.ContainsKey(from) || theirs.SequenceEqual(DirectoryDigest()))
        {
            return;
        }

        from.TryEnqueue(HelloMessage());
        if (!isReply)
        {
            // After our hello is merged there, if the directories still differ, its sender has news for us.
            from.TryEnqueue(DigestMessage(isReply: true));
        }
    }

    /// <param name="askBack">Ask the receiver to answer with its own hello (we lost, or never read, the one it sent).</param>
    private Message HelloMessage(bool askBack = false)
    {
        MsgValue[] members = [MemberEntry(Self), .. _members.Values.Select(MemberEntry)];
        return askBack
            ? Mesh.CreateMessage(MainFlag.Whisper, (long)RingSubFlag.Hello, Options.HelloVersionForTest, MsgValue.Array(members), true)
            : Mesh.CreateMessage(MainFlag.Whisper, (long)RingSubFlag.Hello, Options.HelloVersionForTest, MsgValue.Array(members));
    }

    /// <summary>How long a hello may lag its connection's handshake before it is asked for.</summary>
    private static readonly TimeSpan HelloGrace = TimeSpan.FromMilliseconds(250);

    // Connections on which we asked for the peer's hello again (once each: frames are not lost on a live connection).
    private readonly ConcurrentDictionary<MeshPeer, byte> _helloAsked = new();

    // Connections on which we answered an ask for our hello (once each).
    private readonly ConcurrentDictionary<MeshPeer, byte> _helloAnswered = new();

    /// <summary>
    /// Asks <paramref name="peer"/> for its hello when what it speaks is unknown on a live connection: its hello was read
    /// on a connection the mesh dropped as a duplicate before this one was registered, or knowledge of it was dropped
    /// with an earlier connection. Without it the node would be waited on as a possible py2p node for good.
    /// </summary>
    private void AskForHello(MeshPeer peer)
    {
        if (!peer.IsClosed && _helloAsked.TryAdd(peer, 0))
        {
            if (!peer.TryEnqueue(HelloMessage(askBack: true)))
            {
                _helloAsked.TryRemove(peer, out _); // its queue was full: ask on the next wait
                return;
            }

            ForgetOnClose(_helloAsked, peer);
        }
    }

    /// <summary>
    /// Removes <paramref name="peer"/> from <paramref name="marks"/> when its connection closes, however it closes: a
    /// connection displaced by a later duplicate raises no disconnect.
    /// </summary>
    private static void ForgetOnClose<T>(ConcurrentDictionary<MeshPeer, T> marks, MeshPeer peer) =>
        peer.ClosedToken.UnsafeRegister(static state =>
        {
            var (set, closed) = ((ConcurrentDictionary<MeshPeer, T>, MeshPeer))state!;
            set.TryRemove(closed, out _);
        }, (marks, peer));

    private Message DigestMessage(bool isReply) =>
        Mesh.CreateMessage(MainFlag.Whisper, (long)RingSubFlag.Digest, MsgValue.Bin(DirectoryDigest()), isReply);

    /// <summary>For tests: <see cref="DirectoryDigest"/>.</summary>
    internal byte[] DirectoryDigestForTest() => DirectoryDigest();

    /// <summary>
    /// 16 bytes of SHA-256 over the directory a hello would carry (this node and its members), in id order; computed
    /// again only after the directory changed (every change goes through <see cref="RebuildRing"/>).
    /// </summary>
    private byte[] DirectoryDigest()
    {
        var version = Interlocked.Read(ref _directoryVersion);
        if (_digest is { } cached && cached.Version == version)
        {
            return cached.Digest;
        }

        var members = _members.Values.Append(Self).OrderBy(m => m.Id, StringComparer.Ordinal);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        Span<byte> buffer = stackalloc byte[512];
        foreach (var member in members)
        {
            // id, host, port, storing, epoch: what a hello entry carries.
            AppendText(hash, member.Id, buffer);
            AppendText(hash, member.Address.Host, buffer);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(buffer, member.Address.Port);
            buffer[4] = member.IsStoring ? (byte)1 : (byte)0;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(buffer[5..], member.Epoch);
            hash.AppendData(buffer[..13]);
        }

        var digest = hash.GetHashAndReset()[..16];
        _digest = new DigestCache(version, digest);
        return digest;

        static void AppendText(System.Security.Cryptography.IncrementalHash hash, string text, Span<byte> buffer)
        {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(buffer, text.Length);
            hash.AppendData(buffer[..4]);
            if (System.Text.Encoding.UTF8.GetMaxByteCount(text.Length) <= buffer.Length)
            {
                hash.AppendData(buffer[..System.Text.Encoding.UTF8.GetBytes(text, buffer)]);
            }
            else
            {
                hash.AppendData(System.Text.Encoding.UTF8.GetBytes(text));
            }
        }
    }

    private sealed record DigestCache(long Version, byte[] Digest);

    private bool SpeaksExtensionsKnown(string id) =>
        _capabilities.TryGetValue(id, out var known) && known.Task.IsCompletedSuccessfully && known.Task.Result;

    private void ExpireRelays()
    {
        var now = Options.Mesh.TimeProvider.GetTimestamp();
        foreach (var (id, relay) in _relays)
        {
            if (relay.Expires < now)
            {
                _relays.TryRemove(id, out _);
            }
        }
    }

    private bool ShouldDial(string id) => _wanted.Contains(id);

    private bool CapabilityKnown(string id) => _capabilities.TryGetValue(id, out var known) && known.Task.IsCompleted;

    /// <summary>True when the node said it is a py2p node (its chord meta came before any hello of ours).</summary>
    private bool KnownPy2p(string id) =>
        _capabilities.TryGetValue(id, out var known) && known.Task.IsCompletedSuccessfully && !known.Task.Result;

    /// <summary>
    /// True when <paramref name="peer"/> speaks our extensions. Its hello (our node) or chord meta (a py2p node) comes
    /// right after the handshake, so on a connection just made (a next hop dialled on demand, a reconnect) this waits
    /// for it instead of taking one of our nodes for a py2p node, whose writes count as unacknowledged. False when the
    /// connection closes, or nothing comes within <see cref="RingOptions.RequestTimeout"/>; a cancelled
    /// <paramref name="cancellationToken"/> throws (the caller's deadline says nothing about the peer).
    /// </summary>
    private async ValueTask<bool> SpeaksExtensionsAsync(MeshPeer peer, CancellationToken cancellationToken)
    {
        var known = _capabilities.GetOrAdd(peer.Id!, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!known.Task.IsCompleted)
        {
            using var wait = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RequestTimeout, cancellationToken, peer.ClosedToken);
            try
            {
                if (!_helloAsked.ContainsKey(peer))
                {
                    // Its hello follows the handshake at once; one still missing after a moment will not come by itself.
                    var moment = Task.Delay(HelloGrace, Options.Mesh.TimeProvider, wait.Token);
                    if (await Task.WhenAny(known.Task, moment) == moment && !known.Task.IsCompleted)
                    {
                        AskForHello(peer);
                    }
                }

                await known.Task.WaitAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return false;
            }
        }

        return known.Task.IsCompletedSuccessfully && known.Task.Result;
    }

    private void HandleHello(MeshPeer from, MsgValue members, bool askedBack, int version)
    {
        if (from.Id is null)
        {
            return;
        }

        if (version >= AcceptBatchVersion)
        {
            // This connection takes batches (accepts from version 2, retrieves from 3); a new connection (a restart,
            // perhaps as an older binary) gets none until its own hello says so.
            if (_batchVersions.TryAdd(from, version))
            {
                ForgetOnClose(_batchVersions, from);
            }
            else
            {
                _batchVersions[from] = version;
            }

            if (from.IsClosed)
            {
                _batchVersions.TryRemove(from, out _); // closed meanwhile: its close may have run before the line above
            }
        }
        else
        {
            _batchVersions.TryRemove(from, out _);
        }

        if (askedBack && _helloAnswered.TryAdd(from, 0))
        {
            // Once per connection (each answer carries the whole directory), never asking back in turn.
            from.TryEnqueue(HelloMessage());
            ForgetOnClose(_helloAnswered, from);
        }

        // The directory first, then "it speaks the extensions": a node waiting for this hello (a join deciding whether
        // it is alone, AwaitPendingHellosAsync) must find the members it brings once the wait ends. The other order
        // let a joining node take itself for the ring's only member and serve at once (a RingOwnershipTests run).
        if (members.Kind == MsgKind.Array)
        {
            var updates = new List<(RingMember, bool)>(members.Count);
            foreach (var entry in members.AsArray())
            {
                if (TryReadMember(entry, out var member))
                {
                    updates.Add((member, member.Id == from.Id));
                }
            }

            MergeMembers(updates);
        }

        var known = _capabilities.GetOrAdd(from.Id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!known.TrySetResult(true) && !(known.Task.IsCompletedSuccessfully && known.Task.Result))
        {
            // Its chord meta overtook its hello (or an old connection's did): it is one of ours after all.
            var ours = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            ours.SetResult(true);
            _capabilities[from.Id] = ours;
        }
    }

    private void HandleGone(MsgValue id, MsgValue epoch)
    {
        if (id.Kind != MsgKind.Bin || epoch.Kind != MsgKind.Int)
        {
            return;
        }

        var goneId = id.AsAscii();
        if (goneId == Id)
        {
            // We are alive: say so, with a new epoch, which every node that removed us takes over its departure mark.
            long newEpoch;
            bool awaitingFence;
            lock (_selfLock)
            {
                newEpoch = ++_epoch;
                awaitingFence = _storing && !_serving;
            }

            Interlocked.Increment(ref _directoryVersion);
            RunInBackground(AnnounceSelfAsync);
            if (awaitingFence)
            {
                // The fence exchange runs for one epoch, and answers for the old one are refused: without a new one,
                // a join reported gone before its fence was answered never served (found by a review).
                RunInBackground(() => FenceAfterJoinAsync(newEpoch));
            }

            return;
        }

        // A node we still hold a connection to is alive to us; one that was wrongly reported comes back with its next
        // hello or member broadcast.
        if (Mesh.GetPeer(goneId) is not null || !_members.TryGetValue(goneId, out var known))
        {
            return;
        }

        // A report about an epoch older than the one we know predates the member's own later announcement: the member
        // answered an earlier report about itself with a new epoch (above), and its member broadcast can overtake the
        // report in the flood. Removed now, it would be marked departed at the new epoch, every directory would list
        // it at that epoch, relayed news of it would be refused for DepartedMemory, and the ring would stay split
        // (a 64-node ring in CI lacked one member at 37 nodes for ten minutes). We check for ourselves instead.
        // A member first learnt from its chord meta carries -1 at one node and its own epoch at another: a report at
        // -1 is not compared, nor a member we know at -1.
        if (epoch.AsInt64() is var reported && reported >= 0 && known.Epoch > reported)
        {
            RingLog.StaleGoneReport(Logger, goneId, reported, known.Epoch);
            if (known.IsStoring && _disposed == 0)
            {
                RunInBackground(() => RemoveUnlessReachableAsync(known, "a stale report of its departure was checked and it cannot be dialled", tell: false));
            }

            return;
        }

        RemoveMember(goneId, "another node reported it unreachable");
    }

    /// <summary>
    /// Dials <paramref name="member"/> (when no connection to it is up) and removes it when it cannot be reached;
    /// with <paramref name="tell"/>, a neighbour of it also tells the ring.
    /// </summary>
    private async Task RemoveUnlessReachableAsync(RingMember member, string reason, bool tell)
    {
        if (Mesh.GetPeer(member.Id) is not null)
        {
            return;
        }

        try
        {
            await Mesh.ConnectAsync(member.Address, member.Id, _stopping.Token);
        }
        catch (Exception ex) when (ex is MeshConnectException or TimeoutException)
        {
            // Its ring neighbours tell the ring (as Chord's successor notices a failure); everyone else only
            // forgets it, so one crash costs a few floods, not one per connection it had.
            tell = tell && Neighbours(+1).Take(Options.NeighbourCount).Concat(Neighbours(-1).Take(Options.NeighbourCount)).Any(m => m.Id == member.Id);
            if (!_members.TryGetValue(member.Id, out var now) || now.Epoch != member.Epoch)
            {
                return; // it announced itself meanwhile (or was removed already)
            }

            RemoveMember(member.Id, reason);
            if (tell && _disposed == 0)
            {
                await Mesh.BroadcastPayloadAsync((long)RingSubFlag.Gone, MsgValue.BinAscii(member.Id), member.Epoch);
            }
        }
    }

    private void OnPeerConnected(object? sender, MeshPeerEventArgs e)
    {
        var peer = e.Peer;
        _capabilities.GetOrAdd(peer.Id!, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));

        // Hello first (it tells the peer we speak the extensions before anything else arrives), then chord meta
        // and the keys we know, as py2p sends them on every new connection.
        peer.TryEnqueue(HelloMessage());
        _introduced[peer] = 0; // from here on JoinAsync/UnjoinAsync may send it chord meta too; _storing is read after
        ForgetOnClose(_introduced, peer);
        peer.TryEnqueue(Mesh.CreateMessage(MainFlag.Whisper, (long)SubFlag.Handshake, _storing ? "0" : "1"));
        foreach (var key in _keys.Keys)
        {
            peer.TryEnqueue(Mesh.CreateMessage(MainFlag.Whisper, (long)SubFlag.Notify, MsgValue.Bin(key)));
        }
    }

    private void OnPeerDisconnected(object? sender, MeshPeerEventArgs e)
    {
        _introduced.TryRemove(e.Peer, out _);
        if (!_legacyWaiters.IsEmpty)
        {
            foreach (var slot in _legacyWaiters.Keys.Where(k => k.Item1 == e.Peer).ToList())
            {
                _legacyWaiters.TryRemove(slot, out _); // those requests end with the connection (its ClosedToken)
            }
        }

        var id = e.Peer.Id!;
        // What the node speaks is known per node, not per connection: when another connection to it is already up
        // (a reconnect, a duplicate), its hello may have been read already, and forgetting it would leave the node
        // unknown (never routed to) or taken for a py2p node for as long as that connection lives.
        // A member's word on what it speaks is kept across reconnects: its hello may have been read on a connection
        // the mesh then dropped as the duplicate of one registered after it, and forgetting it then left the node
        // unknown for the life of the new connection (a join's fence waited on it for good). Forgotten with the member.
        if (Mesh.GetPeer(id) is null && !(CapabilityKnown(id) && _members.ContainsKey(id)) && _capabilities.TryRemove(id, out var known))
        {
            known.TrySetCanceled();
        }

        if (Mesh.GetPeer(id) is null)
        {
            // A new connection starts unsuspected, unless this one closed with a request of ours unanswered: a frozen
            // node's connection may close (a duplicate, a handshake that never ends) and its redial never complete,
            // and forgetting the silence would leave it unsuspected for good. Anything heard from it clears the mark.
            ForgetLivenessUnlessAwaited(id);
        }

        if (_disposed != 0 || !_members.TryGetValue(id, out var member))
        {
            return;
        }

        if (!member.IsStoring)
        {
            RemoveMember(id, "a leeching client disconnected"); // clients come and go; nothing is owed to them
            return;
        }

        // A closed connection may be a duplicate being resolved, or a crash. Try the member once: if it cannot
        // be reached, it is gone, and the ring is told.
        RunInBackground(() => RemoveUnlessReachableAsync(member, "its connection closed and it cannot be dialled", tell: true));
    }

    /// <summary>
    /// Moves to a member that turned storing every entry it now owns (PROTOCOL.md §5, handoff), placement copies
    /// excepted unless <see cref="HandsOverTo"/> says otherwise. A member that does not serve yet (its fence is still on its way) takes the versioned ones as hints and
    /// refuses py2p's unversioned ones: what it refused is sent again a few times.
    /// </summary>
    private async Task HandOffToAsync(RingMember member)
    {
        var failed = 0;
        for (var attempt = 0; attempt < 5 && _disposed == 0; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(Options.StabilizeInterval, Options.Mesh.TimeProvider, _stopping.Token);
            }

            // Placement copies stay (a member's predecessor keeps its copies; see HandsOverTo); only the member's
            // predecessor, its interim owner, marks what it accepted as a handoff (another holder's entries may be old
            // leftovers).
            using (await HandoffGateAsync(member.Id))
            {
                // Only a node that serves accepted anything as the member's interim owner (a review: the fence's
                // unmarked rule for a node that does not serve held only if this handoff did not run first).
                var predecessor = Neighbours(+1).FirstOrDefault()?.Id == member.Id;
                var interimOwner = predecessor && IsServing;
                failed = await MoveEntriesAsync(slot => OwnerOf(new RingPosition(slot.Position).Reduced, null)?.Id == member.Id
                    && _table.TryGetValue(slot, out var held) && HandsOverTo(member, held, predecessor), _stopping.Token, handoff: interimOwner, keepCopies: true);
            }

            if (failed == 0 || !IsStoringMember(member.Id, out _))
            {
                return;
            }
        }

        if (failed > 0)
        {
            RingLog.HandoffIncomplete(Logger, failed, member.Id, failed);
        }
    }

    // One handoff to a member at a time: the fence's and the one its merge starts would otherwise both send every entry.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _handoffGates = new(StringComparer.Ordinal);

    /// <summary>Waits until no other handoff to <paramref name="memberId"/> runs; disposing the result lets the next one go.</summary>
    private async ValueTask<HandoffGate> HandoffGateAsync(string memberId)
    {
        // A member that departed meanwhile gets a gate of its own, not kept (nothing else will hand to it).
        var gate = _members.ContainsKey(memberId) ? _handoffGates.GetOrAdd(memberId, static _ => new SemaphoreSlim(1, 1)) : new SemaphoreSlim(1, 1);
        await gate.WaitAsync(_stopping.Token);
        return new HandoffGate(gate);
    }

    private readonly struct HandoffGate(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>
    /// Whether this node's entry <paramref name="held"/>, at a position <paramref name="member"/> owns now, goes to it in a
    /// handoff. Its acceptor state there does (hints included). A placement copy does only when this node is the
    /// member's interim owner (<paramref name="interimOwner"/>: it owned those positions until the member came, or
    /// came back), and only to one of our nodes: a copy this node held there was all it had of them (a leaving owner's
    /// handoff of the version it already held as a copy leaves it a copy). Kept out, a key whose positions were mostly
    /// on one node was read as absent (until an anti-entropy sweep) once that node left and a new member took those
    /// positions from its predecessor, which held only copies there (StorageDurabilityTests, 1 run in 24: 17 of 40
    /// grain states after restarting the three secondary silos of four). The copy goes as a plain versioned store (a
    /// hint at the member, never the handoff mark) and stays here, where the member's placement copies live.
    /// Anywhere else a copy stays where it is.
    /// </summary>
    private bool HandsOverTo(RingMember member, StoredEntry held, bool interimOwner) => !held.IsCopy || (interimOwner && !IsPy2pMember(member));

    /// <summary>Re-stores the selected entries through the ring and drops each one an owner elsewhere took.</summary>
    /// <param name="select">Which entries go.</param>
    /// <param name="cancellationToken">Ends the moves.</param>
    /// <param name="handoff">
    /// A handoff from the member's interim owner (the fence's, or this node's as the member's predecessor): entries this
    /// node accepted as their owner (not hints) go marked as such, and replace what the member loaded at start (see
    /// ApplyVersionedStore).
    /// </param>
    /// <param name="keepCopies">Placement copies taken elsewhere stay here too (a handoff to the member after this node).</param>
    private async Task<int> MoveEntriesAsync(Func<(HashMethod Method, BigInteger Position), bool> select, CancellationToken cancellationToken, bool handoff = false,
        bool keepCopies = false)
    {
        // The ring changed before this (a member merged, or this node left): writes decided here under the old ring
        // land before the scan, or are refused and routed on (OwnedElsewhere).
        WaitForOwnerDecisions();
        var entries = _table.Where(e => select(e.Key)).ToList();

        // A bare promise (no value accepted yet) has nothing to hand over: the new owner's acceptor starts empty, as
        // after a crash (DURABILITY.md). Dropped here, below the raised floor, rather than sent as py2p's delete.
        // A tombstone is not handed to a py2p owner either: py2p's delete of an entry it lacks raises and drops the
        // connection. Its value is gone there already, or py2p never had it.
        foreach (var promiseOnly in entries.Where(e => e.Value.IsPromiseOnly
            || (e.Value.IsTombstone && OwnerOf(new RingPosition(e.Key.Position).Reduced, null) is { } owner && IsPy2pMember(owner))).ToList())
        {
            RaiseBallotFloor(promiseOnly.Value);
            RemoveEntryIfUnchanged(promiseOnly.Key, promiseOnly.Value);
            entries.Remove(promiseOnly);
        }

        var failed = 0;
        await Parallel.ForEachAsync(entries, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellationToken }, async (entry, ct) =>
        {
            var ((method, position), stored) = entry;
            try
            {
                using var deadline = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RequestTimeout, ct);
                var request = new PositionRequest(SubFlag.Store, method, new RingPosition(position), stored.Value, stored.Version, stored.Key,
                    Handoff: handoff && !stored.IsHint && stored.Version is not null);
                var answer = await RouteAsync(request, deadline.Token);
                if (AppliedNowhere(answer))
                {
                    Interlocked.Increment(ref failed); // its owner does not serve yet, or cannot be reached: kept, sent again
                }
                else if (answer.Hops > 0 && (answer.Ok || answer.Error is not null) && !(keepCopies && stored.IsCopy) && RemoveEntryIfUnchanged(entry.Key, stored))
                {
                    // Another node took it (or it went to a py2p owner, which cannot say so): it is no longer ours.
                    RingMetrics.HandedOff.Add(1);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ChordTimeoutException or MeshConnectException)
            {
                Interlocked.Increment(ref failed);
            }
        });
        return failed;
    }

    private void RunInBackground(Func<Task> work)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await work();
            }
            catch (Exception e) when (_disposed != 0 && e is OperationCanceledException or ObjectDisposedException)
            {
                // Stopping.
            }
            catch (MeshConnectException e)
            {
                // A member that cannot be reached: the mesh logged the attempt in one line and backs off.
                RingLog.BackgroundUnreachable(Logger, e.Message);
            }
            catch (Exception e)
            {
                RingLog.BackgroundFailed(Logger, e);
            }
        });
    }
}
