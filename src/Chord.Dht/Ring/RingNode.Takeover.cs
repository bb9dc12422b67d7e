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
/// </remarks>
public sealed partial class RingNode
{
    // The ranges [From, To) taken over, each until a timestamp of the node's clock. Replaced whole, read without a lock.
    private volatile TakenOver[] _takenOver = [];

    private sealed record TakenOver(BigInteger From, BigInteger To, long Until);

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
        _takenOver = [.. _takenOver.Where(t => t.Until > now), new TakenOver(removed.Position.Reduced.Value, next.Position.Reduced.Value, until)];
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
