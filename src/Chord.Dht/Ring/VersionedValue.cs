using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>A key's value with the version it was written under.</summary>
/// <param name="Value">The value; nil when the key has none (never written, or deleted).</param>
/// <param name="Version">The version; <see cref="EntryVersion.Zero"/> when the key was never written or only py2p wrote it.</param>
public sealed record VersionedValue(MsgValue Value, EntryVersion Version)
{
    /// <summary>True when the key has a value.</summary>
    public bool Exists => !Value.IsNil;
}
