namespace Chord.Dht.Tests.Linearizability;

/// <summary>The outcome of checking one key's history with <see cref="LinearizabilityChecker.Check"/>.</summary>
public sealed class LinearizabilityResult
{
    internal LinearizabilityResult(
        LinearizabilityVerdict verdict,
        string key,
        int operationCount,
        IReadOnlyList<Operation> linearization,
        string? stateAfterLinearization,
        IReadOnlyList<Operation> unplaceable,
        long statesExplored,
        TimeSpan elapsed,
        string explanation)
    {
        Verdict = verdict;
        Key = key;
        OperationCount = operationCount;
        Linearization = linearization;
        StateAfterLinearization = stateAfterLinearization;
        Unplaceable = unplaceable;
        StatesExplored = statesExplored;
        Elapsed = elapsed;
        Explanation = explanation;
    }

    /// <summary>Linearizable, not, or inconclusive (time budget exhausted).</summary>
    public LinearizabilityVerdict Verdict { get; }

    /// <summary>Whether <see cref="Verdict"/> is <see cref="LinearizabilityVerdict.Linearizable"/>.</summary>
    public bool IsLinearizable => Verdict == LinearizabilityVerdict.Linearizable;

    /// <summary>The key of the register checked.</summary>
    public string Key { get; }

    /// <summary>How many operations were checked (failed operations and unknown reads are left out).</summary>
    public int OperationCount { get; }

    /// <summary>
    /// When linearizable: a witness order of the checked operations; unknown-outcome operations missing from it are taken
    /// never to have taken effect (or to take effect after everything else). Otherwise: the longest linearizable prefix the search found.
    /// </summary>
    public IReadOnlyList<Operation> Linearization { get; }

    /// <summary>The register's value after <see cref="Linearization"/>.</summary>
    public string? StateAfterLinearization { get; }

    /// <summary>
    /// When not linearizable: the operations that block the longest prefix. First those that can never be linearized
    /// from there (they need a value that nothing remaining can write in time), then the candidates to come next.
    /// </summary>
    public IReadOnlyList<Operation> Unplaceable { get; }

    /// <summary>How many (linearized set, value) configurations the search visited.</summary>
    public long StatesExplored { get; }

    /// <summary>How long the search took.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>A human-readable account of the verdict, written for assertion messages.</summary>
    public string Explanation { get; }

    /// <inheritdoc/>
    public override string ToString() => Explanation;
}
