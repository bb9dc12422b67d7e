namespace Chord.Dht.Tests.Linearizability;

/// <summary>What the client learnt about an operation.</summary>
public enum OperationOutcome
{
    /// <summary>The operation completed and its response is known.</summary>
    Ok,

    /// <summary>The operation definitely did not take effect (for example it threw before sending anything). The checker ignores it.</summary>
    Failed,

    /// <summary>
    /// Timed out or lost: the operation may or may not have taken effect, at any point after its invocation.
    /// The checker treats its response time as +infinity; an unknown read constrains nothing and is ignored.
    /// </summary>
    Unknown,
}
