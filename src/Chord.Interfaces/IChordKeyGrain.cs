using Orleans.Concurrency;

namespace Chord.Interfaces;

/// <summary>
/// One key of the ring (the grain's string key is the ring key, UTF-8). A stateless worker: each call runs on the
/// caller's silo and goes to the key's five positions through that silo's ring node, whose proposer coordinates the
/// key's consensus register. Reads and writes are linearizable per key, whatever silo, client or node makes them.
/// </summary>
[Alias("chord.IChordKeyGrain")]
public interface IChordKeyGrain : IGrainWithStringKey
{
    /// <summary>The agreed value, or null when the key has none.</summary>
    /// <exception cref="Chord.Dht.Ring.ChordNoMajorityException">py2p positions answered but disagree.</exception>
    /// <exception cref="Chord.Dht.Ring.ChordTimeoutException">Too few positions answered in time.</exception>
    [ReadOnly, Alias("get")]
    Task<ChordValue?> Get();

    /// <summary>Stores the value; completes when a write quorum of positions acknowledged it.</summary>
    /// <exception cref="Chord.Dht.Ring.ChordWriteException">Fewer positions than the write quorum acknowledged (py2p owners never do).</exception>
    /// <remarks>The ring's exceptions keep their type and message across the grain call (Orleans surrogates in this assembly).</remarks>
    [Alias("set")]
    Task Set(ChordValue value);

    /// <summary>Deletes the key; true when it had a value.</summary>
    [Alias("delete")]
    Task<bool> Delete();

    /// <summary>Merges <paramref name="delta"/> (a map) into the map stored at the key (an empty map when none) and returns the result.</summary>
    [Alias("apply-delta")]
    Task<ChordValue> ApplyDelta(ChordValue delta);

    /// <summary>Reads and deletes the key; null when it had no value.</summary>
    [Alias("pop")]
    Task<ChordValue?> Pop();

    /// <summary>The value and its version (<see cref="ChordVersion.None"/> when never written).</summary>
    [ReadOnly, Alias("get-versioned")]
    Task<ChordVersionedValue> GetVersioned();

    /// <summary>
    /// Writes <paramref name="value"/> (null deletes) only when the key's version is <paramref name="expected"/>: a
    /// compare-and-set of the key's consensus register, atomic against every writer of the key (any silo, a bare ring
    /// node, the HTTP API). One quorum round when the calling silo wrote the key last, two otherwise.
    /// </summary>
    [Alias("set-if-version")]
    Task<ChordCasResult> SetIfVersion(ChordValue? value, ChordVersion expected);

    /// <summary>
    /// Kept for callers of the first version, where it saved a read when the activation had written
    /// <paramref name="expected"/> itself. The register makes every compare-and-set atomic and, from the silo that
    /// wrote the key last, one round: this is exactly <see cref="SetIfVersion"/>.
    /// </summary>
    [Alias("set-if-version-after-read")]
    Task<ChordCasResult> SetIfVersionAfterRead(ChordValue? value, ChordVersion expected);

    /// <summary>Each of the five positions: its owner, what it holds, and whether it agrees with the majority.</summary>
    [ReadOnly, Alias("inspect")]
    Task<ChordKeyInspection> Inspect();
}

/// <summary>The ring as a whole: its members and its keys. Any key works; the ring is the same from every silo.</summary>
[Alias("chord.IChordRingGrain")]
public interface IChordRingGrain : IGrainWithIntegerKey
{
    /// <summary>Every member with its silo, storing flag, key count and share of the ring.</summary>
    [ReadOnly, Alias("status")]
    Task<ChordRingStatus> GetStatus();

    /// <summary>
    /// Keys stored on the ring after <paramref name="after"/> (null: from the start), in ordinal order, at most
    /// <paramref name="limit"/> (1 to 10,000). Deleted keys are not listed once
    /// their positions have applied the delete (a key deleted a moment ago can still be listed while they do).
    /// </summary>
    [ReadOnly, Alias("keys")]
    Task<ChordKeyPage> ListKeys(string? after, int limit);
}
