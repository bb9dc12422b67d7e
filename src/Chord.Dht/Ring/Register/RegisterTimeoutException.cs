namespace Chord.Dht.Ring.Register;

/// <summary>An update of a key's register ended by its deadline (or its caller) before a quorum committed it.</summary>
/// <param name="bestAccepts">The most acceptors any of its accept rounds heard say yes.</param>
/// <param name="mayHaveLanded">True when an accept of its changed value may have been taken somewhere (it may still take effect).</param>
/// <param name="token">The token that ended it.</param>
internal sealed class RegisterTimeoutException(int bestAccepts, bool mayHaveLanded, CancellationToken token)
    : OperationCanceledException("The register update was not committed before its deadline.", token)
{
    /// <summary>The most acceptors any of its accept rounds heard say yes.</summary>
    public int BestAccepts { get; } = bestAccepts;

    /// <summary>True when an accept of its changed value may have been taken somewhere.</summary>
    public bool MayHaveLanded { get; } = mayHaveLanded;
}
