namespace Chord.Dht.Ring;

/// <summary>The deadline passed before enough positions answered (a read) or acknowledged (a write).</summary>
public sealed class ChordTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public ChordTimeoutException(string message, int answered) : base(message) => Answered = answered;

    /// <summary>How many positions answered (or acknowledged) in time.</summary>
    public int Answered { get; }
}
