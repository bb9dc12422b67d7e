using System.Text;

namespace Chord.Dht.Tests.Linearizability;

/// <summary>The outcome of <see cref="LinearizabilityChecker.CheckPerKey"/>: one result per key.</summary>
public sealed class PerKeyLinearizabilityResult
{
    internal PerKeyLinearizabilityResult(IReadOnlyDictionary<string, LinearizabilityResult> results)
    {
        Results = results;
        Failures = [.. results.Values.Where(result => !result.IsLinearizable).OrderBy(result => result.Key, StringComparer.Ordinal)];
        Verdict = Failures.Any(result => result.Verdict == LinearizabilityVerdict.NotLinearizable)
            ? LinearizabilityVerdict.NotLinearizable
            : Failures.Count > 0 ? LinearizabilityVerdict.Inconclusive : LinearizabilityVerdict.Linearizable;
        var text = new StringBuilder();
        if (Failures.Count == 0)
        {
            text.Append($"All {results.Count} key(s) are linearizable ({results.Values.Sum(result => result.OperationCount)} operations).");
        }
        else
        {
            text.Append($"{Failures.Count} of {results.Count} key(s) are not (or not provably) linearizable.\n");
            foreach (var failure in Failures)
            {
                text.Append('\n').Append(failure.Explanation).Append('\n');
            }
        }

        Explanation = text.ToString();
    }

    /// <summary>NotLinearizable if any key is; otherwise Inconclusive if any key is; otherwise Linearizable.</summary>
    public LinearizabilityVerdict Verdict { get; }

    /// <summary>Whether every key is linearizable (the whole multi-key history is then linearizable, by locality).</summary>
    public bool IsLinearizable => Verdict == LinearizabilityVerdict.Linearizable;

    /// <summary>The result of each key.</summary>
    public IReadOnlyDictionary<string, LinearizabilityResult> Results { get; }

    /// <summary>The keys that are not linearizable or inconclusive, ordered by key.</summary>
    public IReadOnlyList<LinearizabilityResult> Failures { get; }

    /// <summary>A human-readable account, listing every failing key's explanation.</summary>
    public string Explanation { get; }

    /// <inheritdoc/>
    public override string ToString() => Explanation;
}
