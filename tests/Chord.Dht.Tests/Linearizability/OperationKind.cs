namespace Chord.Dht.Tests.Linearizability;

/// <summary>What a client asked the register (one key) to do.</summary>
public enum OperationKind
{
    /// <summary>Read the current value; the response is the value (null = not found).</summary>
    Read,

    /// <summary>Overwrite the value.</summary>
    Write,

    /// <summary>Remove the value: afterwards a read returns null (not found).</summary>
    Delete,

    /// <summary>Atomically set the value to <see cref="Operation.Value"/> if it equals <see cref="Operation.Expected"/>.</summary>
    CompareAndSet,
}
