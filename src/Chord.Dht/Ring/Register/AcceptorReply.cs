using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Register;

/// <summary>One acceptor's answer to a prepare or an accept of a key's register.</summary>
/// <param name="Ok">True when it promised (prepare) or accepted (accept); false when a higher ballot stood in the way.</param>
/// <param name="Value">Prepare: the value it holds (nil: none, or a delete). Accept: nil.</param>
/// <param name="Version">Prepare: the version of that value (null: nothing here). Accept: null.</param>
/// <param name="Accepted">The ballot of the value it holds (zero: nothing accepted).</param>
/// <param name="Promised">The highest ballot it has promised; a refused proposer picks a ballot above it.</param>
/// <param name="IsCopy">Prepare: what it holds is a placement copy, a hint that may be older than the key's value.</param>
internal readonly record struct AcceptorReply(bool Ok, MsgValue Value, EntryVersion? Version, EntryVersion Accepted, EntryVersion Promised, bool IsCopy = false)
{
    /// <summary>
    /// True when the acceptor knows nothing reliable of the key: it holds nothing (it never accepted a value, or it
    /// is a new owner), or only a placement copy.
    /// </summary>
    public bool IsEmpty => (Version is null && Value.IsNil) || IsCopy;

    /// <summary>
    /// True for a hint that holds nothing: a position whose owner took it over from a crashed member and does not know
    /// yet what it should hold. It makes no prepare's quorum.
    /// </summary>
    public bool IsGap => IsCopy && Version is null && Value.IsNil;
}
