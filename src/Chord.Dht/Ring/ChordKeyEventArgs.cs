namespace Chord.Dht.Ring;

/// <summary>A key that was added to or deleted from the ring (py2p's <c>add</c> and <c>delete</c> events).</summary>
public sealed class ChordKeyEventArgs(byte[] key) : EventArgs
{
    /// <summary>The key's bytes.</summary>
    public ReadOnlyMemory<byte> Key { get; } = key;
}
