using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>What one of a key's five positions answered to <see cref="RingNode.InspectAsync(byte[], CancellationToken)"/>.</summary>
/// <param name="Method">The hash method of the position.</param>
/// <param name="Position">The position on the ring.</param>
/// <param name="Owner">The member that owns the position in the inspecting node's directory; null when it knows none.</param>
/// <param name="Answered">False when the position did not answer before the deadline.</param>
/// <param name="Value">The value the position holds (nil: none, or a delete).</param>
/// <param name="Version">The version it holds; null when it answered without one (a py2p owner or entry) or did not answer.</param>
/// <param name="AgreesWithMajority">True when its value and version are the ones the read decided on.</param>
public sealed record PositionInspection(
    HashMethod Method, RingPosition Position, RingMember? Owner, bool Answered, MsgValue Value, EntryVersion? Version, bool AgreesWithMajority);

/// <summary>Every position of one key, and what a read decides from them.</summary>
/// <param name="Positions">The five positions, in method order.</param>
/// <param name="Value">The decided value: the newest version's, or (with py2p answers) the value a read quorum agrees on; nil when none.</param>
/// <param name="Version">The decided version; null when the decision fell back to py2p's value majority.</param>
/// <param name="HasMajority">False when no decision could be made (too few answers, or py2p answers that disagree).</param>
public sealed record KeyInspection(IReadOnlyList<PositionInspection> Positions, MsgValue Value, EntryVersion? Version, bool HasMajority);

/// <summary>The outcome of <see cref="RingNode.SetIfVersionAsync(byte[], MsgValue, EntryVersion, CancellationToken)"/>.</summary>
/// <param name="Succeeded">True when the key held the expected version and the new value was acknowledged by a write quorum.</param>
/// <param name="Current">On success, the value written and its new version; on failure, what the key holds instead.</param>
public sealed record CompareAndSetResult(bool Succeeded, VersionedValue Current);
