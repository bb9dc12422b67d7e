namespace Chord.Interfaces;

/// <summary>One member of the ring.</summary>
/// <param name="NodeId">The ring node id (base58).</param>
/// <param name="Address">Where it listens (host:port).</param>
/// <param name="Silo">The Orleans silo it runs in; null for a bare node (the chord CLI, or py2p).</param>
/// <param name="IsStoring">True when it stores data (joined), false for a leeching client.</param>
/// <param name="KeyCount">Entries it stores (one per position held, placement copies included); null when it is not a silo and cannot be asked.</param>
/// <param name="Share">The fraction of the ring (0 to 1) it owns, from its own position up to the next storing member's; 0 when leeching.</param>
/// <param name="OwnedKeyCount">Entries at positions it owns (each key has five positions in all); null when it is not a silo and cannot be asked.</param>
/// <param name="IsSuspect">True when the observing node suspects it: it left a request unanswered for a few seconds and sent nothing else (a frozen process).</param>
[GenerateSerializer, Immutable, Alias("chord.ring-member")]
public sealed record ChordRingMember(
    [property: Id(0)] string NodeId,
    [property: Id(1)] string Address,
    [property: Id(2)] string? Silo,
    [property: Id(3)] bool IsStoring,
    [property: Id(4)] int? KeyCount,
    [property: Id(5)] double Share,
    [property: Id(6)] int? OwnedKeyCount = null,
    [property: Id(7)] bool IsSuspect = false);

/// <summary>The ring as one silo's node sees it.</summary>
/// <param name="ObservedBy">The node id of the silo node that answered.</param>
/// <param name="Members">Every member it knows, itself included, in ring order (storing members by position, then clients).</param>
[GenerateSerializer, Immutable, Alias("chord.ring-status")]
public sealed record ChordRingStatus([property: Id(0)] string ObservedBy, [property: Id(1)] IReadOnlyList<ChordRingMember> Members);

/// <summary>One page of keys, in ordinal order.</summary>
/// <param name="Keys">The keys after the requested one, at most the requested count.</param>
/// <param name="Next">The key to pass as "after" for the next page; null when this is the last page.</param>
[GenerateSerializer, Immutable, Alias("chord.key-page")]
public sealed record ChordKeyPage([property: Id(0)] IReadOnlyList<string> Keys, [property: Id(1)] string? Next);
