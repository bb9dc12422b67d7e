using System.Numerics;
using Chord.Dht.Mesh;
using Chord.Dht.Ring.Storage;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>The local table, and its copy on disk when <see cref="RingOptions.DataDirectory"/> is set.</summary>
public sealed partial class RingNode
{
    private readonly IEntryStore? _store;

    /// <summary>Opens the data directory (when configured) and settles the salt: kept, given, or new.</summary>
    private static (IEntryStore? Store, Mesh.MeshOptions Mesh) OpenStore(RingOptions options)
    {
        var mesh = options.Mesh.Clone(); // the caller's options stay as given
        if (options.DataDirectory is null)
        {
            return (null, mesh);
        }

        var store = new SqliteEntryStore(options.DataDirectory);
        mesh.Salt = store.LoadSalt() ?? mesh.Salt ?? NodeIdentity.NewSalt();
        store.SaveSalt(mesh.Salt);
        return (store, mesh);
    }

    /// <summary>Loads what the data directory kept: the entries and, from their keys, the known keys.</summary>
    private void LoadStoredEntries()
    {
        if (_store is null)
        {
            return;
        }

        _ballotFloor = _store.LoadBallotFloor();
        foreach (var (method, position, entry) in _store.LoadEntries())
        {
            // What this node accepted before it stopped, but not what its positions accepted while it was away: their
            // new owners (its ring predecessors) took writes and deletes meanwhile, and hand them back only after it
            // rejoins. Until a proposer's accept lands here, each entry is a hint (restored), as a repaired one is, so
            // that no read or prepare decides on it alone; py2p's unversioned entries keep py2p's rule. Its promise
            // still refuses lower ballots, but no sticky proposer's one-round accept is taken under it until a prepare
            // renews it (StoredEntry.PromiseFromBeforeStart). The whole-ring simulation's crash profile found both
            // histories: a delete read back as gone, then the value before it; two compare-and-sets from one value
            // that both swapped.
            _table[(method, position)] = entry.AsLoadedAtStart();
            if (entry.Key is { } key && entry.HasValue)
            {
                _keys.TryAdd(key, 0);
            }
        }
    }

    /// <summary>The lock that every read-modify-write of the entry at <paramref name="slot"/> holds (one of 64 stripes).</summary>
    private Lock LockFor((HashMethod Method, BigInteger Position) slot) => _slotLocks[(int)((uint)slot.GetHashCode() % SlotLockCount)];

    /// <summary>Sets an entry (in memory and, durably, on disk). Callers hold the slot's lock (<c>LockFor</c>) when they compare first.</summary>
    private void PutEntry((HashMethod Method, BigInteger Position) slot, StoredEntry entry)
    {
        // A value read from a frame may be slices of that frame's bytes: an entry kept for long holds its own copy.
        if (entry.Value.Detached() is var value && !ReferenceEquals(value, entry.Value))
        {
            entry = entry with { Value = value };
        }

        _store?.Put(slot.Method, slot.Position, entry);
        _table[slot] = entry;
    }

    /// <summary>
    /// Keeps <paramref name="key"/> with the entries this node holds at its positions that arrived without it: py2p's
    /// stores carry only (method, position, value), and the key, learnt from a notify broadcast or a read, is what
    /// lets a holder find the key's other positions when one of them is lost (RepairUnversionedKeysAsync).
    /// </summary>
    private void AdoptKey(byte[] key)
    {
        var positions = KeyHashes.All(key);
        foreach (var method in KeyHashes.Methods)
        {
            var slot = (method, positions[(int)method].Value);
            if (!_table.TryGetValue(slot, out var seen) || seen.Key is not null)
            {
                continue; // the common case, without the lock
            }

            lock (LockFor(slot))
            {
                if (_table.TryGetValue(slot, out var entry) && entry.Key is null)
                {
                    PutEntry(slot, entry with { Key = key });
                }
            }
        }
    }

    private void RemoveEntry((HashMethod Method, BigInteger Position) slot)
    {
        _store?.Remove(slot.Method, slot.Position);
        _table.TryRemove(slot);
    }

    /// <summary>Removes an entry only if it is still exactly <paramref name="expected"/> (nobody wrote it meanwhile).</summary>
    private bool RemoveEntryIfUnchanged((HashMethod Method, BigInteger Position) slot, StoredEntry expected)
    {
        lock (LockFor(slot))
        {
            if (!_table.TryGetValue(slot, out var current) || !ReferenceEquals(current, expected))
            {
                return false;
            }

            RemoveEntry(slot);
            return true;
        }
    }

    /// <summary>Test hook: the node, as owner, drops every store and delta without answering (an owner cut off).</summary>
    internal volatile bool IgnoreWritesForTest;

    /// <summary>For tests: runs on the thread about to apply a write as this node's own, after the owner decision (it may block there).</summary>
    internal Action<HashMethod, RingPosition>? HoldApplyForTest;

    /// <summary>For tests: a prepare or accept at this owner for which it returns true is applied and never answered (an answer lost on the way).</summary>
    internal Func<HashMethod, RingPosition, bool>? DropAckForTest;

    /// <summary>Test hook: the node reads no fence (a new member's request to stop answering for its positions) while set.</summary>
    internal volatile bool IgnoreFencesForTest;

    /// <summary>For tests: as if a member had broadcast that this node is gone (it answers with a new epoch).</summary>
    internal void ReportedGoneForTest() => HandleGone(MsgValue.BinAscii(Id), _epoch);

    /// <summary>For tests: forgets what a node speaks, as if its hello had been read on a connection since dropped.</summary>
    internal void ForgetCapabilityForTest(string id) => _capabilities.TryRemove(id, out _);

    /// <summary>For tests: runs in the join's fence loop with the connection to the predecessor, before the loop asks what it speaks.</summary>
    internal Func<MeshPeer, Task>? BeforeFenceForTest;

    /// <summary>
    /// Test hook: the next this many requests that reach the node (retrieve, store, delta, prepare, accept) are dropped
    /// unread, as a frame lost on the way or a relay that died holding it; counts down to zero.
    /// </summary>
    internal int DropRequestsForTest;

    /// <summary>For tests: forgets a member as if its announcement never arrived (no departure mark, no repair, no broadcast).</summary>
    internal void ForgetMemberForTest(string id)
    {
        lock (_membershipLock)
        {
            _members.TryRemove(id, out _);
            RebuildRing();
        }
    }

    /// <summary>For tests: takes <paramref name="member"/> into the directory as first-hand news (a member that may not exist).</summary>
    internal void MergeMemberForTest(RingMember member) => MergeMember(member, force: true);

    /// <summary>
    /// Test hook: removes a member with a departure mark, as a report that it was gone would, but tells nobody (a false
    /// report the member never heard).
    /// </summary>
    internal void MarkDepartedForTest(string id) => RemoveMember(id, "marked departed by a test");

    /// <summary>For tests' failure messages: what this node knows of member <paramref name="id"/>, and why it may lack it.</summary>
    internal string DescribeMemberForTest(string id)
    {
        var known = _members.TryGetValue(id, out var member) ? $"{(member.IsStoring ? "storing" : "leeching")}@{member.Epoch}" : "unknown";
        var departed = _departed.TryGetValue(id, out var mark) ? $", departed@{mark.Epoch}{(mark.ProbedAt is null ? string.Empty : " probed")}" : string.Empty;
        var link = Mesh.GetPeer(id) is not null ? ", connected" : Mesh.IsDialling(id) ? ", dialling" : string.Empty;
        return known + departed + link;
    }

    /// <summary>Test hook: forgets the entry at a position, as a position that missed a write.</summary>
    internal void RemoveLocalForTest(HashMethod method, RingPosition position)
    {
        var slot = (method, position.Value);
        lock (LockFor(slot))
        {
            RemoveEntry(slot);
        }
    }

    /// <summary>Test hook: the position holds what a node loads from its data directory at start (a restored value, a promise from before).</summary>
    internal void PutLoadedAtStartForTest(HashMethod method, RingPosition position, MsgValue value, EntryVersion version, EntryVersion promised, byte[] key)
    {
        var slot = (method, position.Value);
        lock (LockFor(slot))
        {
            PutEntry(slot, new StoredEntry(value, version, key, Promised: promised).AsLoadedAtStart());
        }
    }

    /// <summary>Test hook: what this node holds at a position, as text (value, version, ballots, copy mark).</summary>
    internal string DescribeLocalForTest(HashMethod method, RingPosition position) =>
        _table.TryGetValue((method, position.Value), out var entry)
            ? $"{(entry.Value.IsNil ? "nil" : entry.Value.ToString())}@{entry.Version?.ToString() ?? "-"} accepted {entry.AcceptedBallot} promised {entry.PromisedBallot}{(entry.IsCopy ? " (copy)" : string.Empty)}{(entry.IsRestored ? " (restored)" : string.Empty)}"
            : "nothing";

    /// <summary>Test hook: what this node holds at a position.</summary>
    internal (MsgValue Value, EntryVersion? Version)? PeekLocalForTest(HashMethod method, RingPosition position) =>
        _table.TryGetValue((method, position.Value), out var entry) ? (entry.Value, entry.Version) : null;
}
