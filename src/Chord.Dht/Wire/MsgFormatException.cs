namespace Chord.Dht.Wire;

/// <summary>
/// Thrown when bytes received from a peer are not a well-formed py2p frame or msgpack value.
/// The connection that sent them is closed; nothing else is affected.
/// </summary>
public sealed class MsgFormatException : FormatException
{
    /// <summary>Creates the exception with a message that says what was wrong.</summary>
    public MsgFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error underneath.</summary>
    public MsgFormatException(string message, Exception inner) : base(message, inner) { }
}
