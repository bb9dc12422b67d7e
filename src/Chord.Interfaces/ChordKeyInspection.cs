namespace Chord.Interfaces;

/// <summary>What one of a key's five positions answered.</summary>
/// <param name="Method">The hash method's wire name (sha512, sha384, sha256, sha224, sha1).</param>
/// <param name="Position">The position on the ring, in base58.</param>
/// <param name="OwnerId">The owner's node id in the asking node's directory; null when it knew none.</param>
/// <param name="OwnerAddress">The owner's address (host:port); null when unknown.</param>
/// <param name="Answered">False when the position did not answer in time.</param>
/// <param name="Value">The value the position holds; null for none.</param>
/// <param name="Version">The version it holds; null when it answered without one (a py2p owner or entry) or did not answer.</param>
/// <param name="AgreesWithMajority">True when it holds the value and version a read decides on.</param>
[GenerateSerializer, Immutable, Alias("chord.position-report")]
public sealed record ChordPositionReport(
    [property: Id(0)] string Method,
    [property: Id(1)] string Position,
    [property: Id(2)] string? OwnerId,
    [property: Id(3)] string? OwnerAddress,
    [property: Id(4)] bool Answered,
    [property: Id(5)] ChordValue? Value,
    [property: Id(6)] ChordVersion? Version,
    [property: Id(7)] bool AgreesWithMajority);

/// <summary>Every position of a key beside the decision a read makes from them.</summary>
/// <param name="Key">The key.</param>
/// <param name="Positions">The five positions, in hash-method order.</param>
/// <param name="Value">The decided value; null when the key has none or no decision could be made.</param>
/// <param name="Version">The decided version; null when the decision fell back to py2p's value majority.</param>
/// <param name="HasMajority">False when no decision could be made.</param>
[GenerateSerializer, Immutable, Alias("chord.key-inspection")]
public sealed record ChordKeyInspection(
    [property: Id(0)] string Key,
    [property: Id(1)] IReadOnlyList<ChordPositionReport> Positions,
    [property: Id(2)] ChordValue? Value,
    [property: Id(3)] ChordVersion? Version,
    [property: Id(4)] bool HasMajority);
