namespace Chord.Dht.Tests.Linearizability;

/// <summary>The answer of <see cref="LinearizabilityChecker"/>.</summary>
public enum LinearizabilityVerdict
{
    /// <summary>A legal sequential order respecting real time exists.</summary>
    Linearizable,

    /// <summary>No legal sequential order respecting real time exists.</summary>
    NotLinearizable,

    /// <summary>The search ran out of its time budget before reaching an answer.</summary>
    Inconclusive,
}
