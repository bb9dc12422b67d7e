namespace Chord.Dht.Ring;

/// <summary>A write reached fewer owners than the write quorum, or an owner refused it.</summary>
public sealed class ChordWriteException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ChordWriteException(string message, int acknowledged) : base(message) => Acknowledged = acknowledged;

    /// <summary>How many positions acknowledged the write.</summary>
    public int Acknowledged { get; }
}
