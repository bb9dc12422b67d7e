using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>What an owner holds at one position.</summary>
/// <param name="Value">The value; nil is a tombstone (a versioned delete).</param>
/// <param name="Version">The version; null when a py2p node wrote it (py2p has no versions).</param>
/// <param name="Key">The original key, so any holder can recompute the other four positions; null from py2p.</param>
internal sealed record StoredEntry(MsgValue Value, EntryVersion? Version, byte[]? Key)
{
    /// <summary>True for a tombstone.</summary>
    public bool IsTombstone => Value.IsNil;
}
