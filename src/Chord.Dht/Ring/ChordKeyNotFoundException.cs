namespace Chord.Dht.Ring;

/// <summary>The key has no value on the ring: a majority of its positions answered that they hold nothing.</summary>
public sealed class ChordKeyNotFoundException : KeyNotFoundException
{
    /// <summary>Creates the exception.</summary>
    public ChordKeyNotFoundException(string message) : base(message) { }
}
