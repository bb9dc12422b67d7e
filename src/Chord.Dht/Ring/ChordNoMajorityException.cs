namespace Chord.Dht.Ring;

/// <summary>Enough positions answered, but no value was given by the read quorum of them.</summary>
public sealed class ChordNoMajorityException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ChordNoMajorityException(string message, int answers) : base(message) => Answers = answers;

    /// <summary>How many positions answered.</summary>
    public int Answers { get; }
}
