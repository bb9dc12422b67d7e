using System.Collections.Concurrent;
using System.Numerics;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// Positions taken over from a crashed member: for a while their new owner (the member's predecessor) does not know
/// what it should hold there, and says so.
/// </summary>
/// <remarks>
/// When a storing member is found gone, its positions fall to its predecessor, which holds for them only the placement
/// copies it kept (if any) until crash repair brings the rest from the key's other holders. Until then, "nothing here"
/// from it is not an acceptor's word but a gap: for <see cref="RingOptions.RepairTimeout"/> after the takeover it
/// answers a retrieve or a prepare at such a position that it holds no value for as a hint (no read decides on it,
/// and a prepare does not count it toward its quorum). A key whose positions were all on the crashed node is then
/// neither readable nor writable until repair brings its value (or the time is up), instead of read as absent
/// (the crash-profile trace of seed 5230: a key on one node, its copies on the node's second predecessor, read as
/// "not found" from the first one right after the crash).
/// Every member of ours restores what it held there and then tells the new owner (<see cref="RingSubFlag.Repaired"/>);
/// once every member it knew at the takeover has, nothing more is coming, and the gap closes before the repair time is
/// up: a key whose positions were mostly on the crashed node is readable and writable again within a repair round,
/// absent keys included, instead of after <see cref="RingOptions.RepairTimeout"/>.
/// </remarks>
public sealed partial class RingNode
{
    // The ranges [From, To) taken over, each until a timestamp of the node's clock. Replaced whole under
    // _takenOverLock, read without a lock.
    private volatile TakenOver[] _takenOver = [];
    private readonly Lock _takenOverLock = new();

    // "Repaired" heard for a loss this node had not noted yet (the sender found the member gone first): taken into
    // account when it does, within the repair time (an older word may be about an earlier removal of the member at
    // the same epoch, a false report it came back from). Bounded: cleared past a few hundred losses. Under
    // _takenOverLock.
    private readonly Dictionary<(string Lost, long Epoch), (long Until, HashSet<string> From)> _repairedEarly = [];

    /// <param name="From">Where the range starts (the lost member's position).</param>
    /// <param name="To">Where it ends (the next member's position).</param>
    /// <param name="Until">When it stops being a gap whatever is still awaited.</param>
    /// <param name="Lost">The crashed member's id.</param>
    /// <param name="LostEpoch">Its epoch when it was found gone.</param>
    /// <param name="Awaiting">The members (this node among them) whose repair for this loss has not said it is done.</param>
    private sealed record TakenOver(BigInteger From, BigInteger To, long Until, string Lost, long LostEpoch, ConcurrentDictionary<string, byte> Awaiting);

    /// <summary>
    /// After <paramref name="removed"/> left the ring without handing anything off: when its position is now this
    /// node's, marks the range it owned as taken over. Called under the membership lock, after the ring was rebuilt.
    /// </summary>
    private void NoteTakeover(RingMember removed)
    {
        var ring = _ring;
        if (!_storing || ring.Length == 0 || OwnerOf(ring, removed.Position.Reduced, null)?.Id != Id)
        {
            return;
        }

        // The removed member owned [its position, the next member's position).
        var next = Array.Find(ring, m => m.Position > removed.Position) ?? ring[0];
        var time = Options.Mesh.TimeProvider;
        var until = time.GetTimestamp() + (long)(Options.RepairTimeout.TotalSeconds * time.TimestampFrequency);
        var now = time.GetTimestamp();

        // Who repairs: every member of ours the ring names now, this node included (py2p nodes restore nothing).
        var awaiting = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        foreach (var member in ring)
        {
            if (member.Id != removed.Id && !IsPy2pMember(member))
            {
                awaiting.TryAdd(member.Id, 0);
            }
        }

        lock (_takenOverLock)
        {
            if (_repairedEarly.Remove((removed.Id, removed.Epoch), out var early) && early.Until > now)
            {
                foreach (var id in early.From)
                {
                    awaiting.TryRemove(id, out _);
                }
            }

            _takenOver = [.. _takenOver.Where(t => t.Until > now), new TakenOver(removed.Position.Reduced.Value, next.Position.Reduced.Value, until, removed.Id, removed.Epoch, awaiting)];
        }
    }

    /// <summary>
    /// A member (or this node) finished its repair for the loss of <paramref name="lost"/>: once every member awaited
    /// for that takeover has, its range is no longer a gap.
    /// </summary>
    private void HandleRepaired(string from, string lost, long epoch)
    {
        var matched = false;
        lock (_takenOverLock)
        {
            foreach (var range in _takenOver)
            {
                if (range.Lost != lost || range.LostEpoch != epoch)
                {
                    continue;
                }

                matched = true;
                if (range.Awaiting.TryRemove(from, out _) && range.Awaiting.IsEmpty)
                {
                    _takenOver = [.. _takenOver.Where(t => t != range)];
                    RingLog.TakeoverRepaired(Logger, Id, lost);
                    break;
                }
            }

            if (!matched)
            {
                var time = Options.Mesh.TimeProvider;
                var now = time.GetTimestamp();
                if (_repairedEarly.Count > 256)
                {
                    _repairedEarly.Clear(); // bounded: a loss noted much later waits for its repair time instead
                }

                if (!_repairedEarly.TryGetValue((lost, epoch), out var early) || early.Until <= now)
                {
                    early = (now + (long)(Options.RepairTimeout.TotalSeconds * time.TimestampFrequency), new HashSet<string>(StringComparer.Ordinal));
                    _repairedEarly[(lost, epoch)] = early;
                }

                early.From.Add(from);
            }
        }
    }

    /// <summary>Tells the new owner of <paramref name="lost"/>'s positions that this node's repair for it is done (best effort).</summary>
    private async Task SayRepairedAsync(RingMember lost)
    {
        var owner = OwnerOf(lost.Position.Reduced, null);
        if (owner is null || IsPy2pMember(owner))
        {
            return;
        }

        if (owner.Id == Id)
        {
            HandleRepaired(Id, lost.Id, lost.Epoch);
            return;
        }

        try
        {
            using var attempt = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.AttemptTimeout, _stopping.Token);
            var peer = Mesh.GetPeer(owner.Id) ?? await Mesh.ConnectAsync(owner.Address, owner.Id, attempt.Token);
            await peer.WhisperAsync((long)RingSubFlag.Repaired, MsgValue.BinAscii(lost.Id), lost.Epoch);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Unsaid: the owner keeps the range a gap until the repair time is up, as before this message existed.
        }
    }

    /// <summary>True when <paramref name="position"/> lies in a range this node took over from a crashed member within the repair time.</summary>
    private bool TakenOverJustNow(BigInteger position)
    {
        var ranges = _takenOver;
        if (ranges.Length == 0)
        {
            return false;
        }

        var now = Options.Mesh.TimeProvider.GetTimestamp();
        var reduced = new RingPosition(position).Reduced.Value;
        foreach (var range in ranges)
        {
            if (range.Until > now && (range.From < range.To
                ? reduced >= range.From && reduced < range.To
                : reduced >= range.From || reduced < range.To))
            {
                return true;
            }
        }

        return false;
    }
}
