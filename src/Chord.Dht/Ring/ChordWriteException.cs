namespace Chord.Dht.Ring;

/// <summary>A write reached fewer owners than the write quorum, or an owner refused it.</summary>
public sealed class ChordWriteException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ChordWriteException(string message, int acknowledged) : base(message) => Acknowledged = acknowledged;

    /// <summary>How many positions acknowledged the write.</summary>
    public int Acknowledged { get; }

    /// <summary>
    /// The words of the message of a write that met another writer's after its own was sent (contention, not a ring
    /// short of owners): it may or may not have been applied, and a new read tells. Part of the message so that it
    /// survives where only the message travels (an Orleans call's exception, the HTTP API's problem details).
    /// </summary>
    public const string MetConcurrentWrite = "met a concurrent write after its own was sent";
}
