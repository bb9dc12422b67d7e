namespace Chord.Dht.Ring.Register;

/// <summary>The result of an update of a key's register.</summary>
/// <param name="Written">True when the update's change was committed; false when it chose to keep the value.</param>
/// <param name="Previous">The committed value the change was decided on.</param>
/// <param name="Current">The committed value afterwards (equal to <paramref name="Previous"/> when nothing was written).</param>
/// <param name="Rounds">Quorum rounds it took: 1 for a sticky proposer's write, 2 for prepare + accept, more after conflicts.</param>
public sealed record RegisterOutcome(bool Written, VersionedValue Previous, VersionedValue Current, int Rounds);
