using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// Checks that histories of a key-value register (read, write, delete, compare-and-set) are linearizable:
/// Wing &amp; Gong's search with Lowe's memoization, as in Porcupine and Knossos.
/// </summary>
public static class LinearizabilityChecker
{
    /// <summary>The time budget of a check when none is given.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private const int ListedPrefixOperations = 12;
    private const int ListedCandidates = 20;

    /// <summary>
    /// Checks the history of a single key, starting from <paramref name="initialValue"/> (null = absent).
    /// Failed operations and unknown-outcome reads are ignored; unknown-outcome writes, deletes and compare-and-sets may
    /// take effect at any point after their invocation, or never. Intervals that touch (equal ticks) count as concurrent.
    /// </summary>
    /// <param name="history">Operations on one key (use <see cref="CheckPerKey"/> for several keys).</param>
    /// <param name="initialValue">The register's value before the history.</param>
    /// <param name="timeout">
    /// Gives up with <see cref="LinearizabilityVerdict.Inconclusive"/> after this long; null = <see cref="DefaultTimeout"/>,
    /// <see cref="Timeout.InfiniteTimeSpan"/> = no limit.
    /// </param>
    public static LinearizabilityResult Check(IReadOnlyList<Operation> history, string? initialValue = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        var keys = history.Select(operation => operation.Key).Distinct(StringComparer.Ordinal).Take(3).ToList();
        if (keys.Count > 1)
        {
            throw new ArgumentException(
                $"The history mixes keys ({string.Join(", ", keys.Select(key => $"'{key}'"))}...): use CheckPerKey.", nameof(history));
        }

        var started = Stopwatch.GetTimestamp();
        var limit = timeout ?? DefaultTimeout;
        var deadline = limit == Timeout.InfiniteTimeSpan || limit.TotalSeconds * Stopwatch.Frequency >= long.MaxValue - started
            ? long.MaxValue
            : started + (long)(Math.Max(0, limit.TotalSeconds) * Stopwatch.Frequency);

        var key = keys.Count == 0 ? "" : keys[0];
        var operations = Relevant(history);
        var outcome = new LinearizabilitySearch(operations).Run(initialValue, deadline);
        var elapsed = Stopwatch.GetElapsedTime(started);
        var order = outcome.Order.Select(index => operations[index]).ToList();
        var state = Replay(order, initialValue);
        var stuck = outcome.Verdict == LinearizabilityVerdict.NotLinearizable
            ? Stuck(operations, outcome.Order, state)
            : [];
        var explanation = Explain(key, history, operations, initialValue, outcome, order, state, stuck, elapsed);
        return new LinearizabilityResult(
            outcome.Verdict,
            key,
            operations.Length,
            order,
            state,
            [.. stuck.Select(entry => entry.Operation)],
            outcome.Explored,
            elapsed,
            explanation);
    }

    /// <summary>
    /// Checks a multi-key history one key at a time (linearizability is local: the whole history is linearizable
    /// iff each key's is), in parallel. Every key starts from <paramref name="initialValue"/>.
    /// </summary>
    /// <param name="history">Operations on any number of keys.</param>
    /// <param name="initialValue">Every register's value before the history.</param>
    /// <param name="timeout">The time budget of each key; null = <see cref="DefaultTimeout"/>, <see cref="Timeout.InfiniteTimeSpan"/> = no limit.</param>
    public static PerKeyLinearizabilityResult CheckPerKey(IReadOnlyList<Operation> history, string? initialValue = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        var byKey = history.GroupBy(operation => operation.Key, StringComparer.Ordinal).ToList();
        var results = new ConcurrentDictionary<string, LinearizabilityResult>(StringComparer.Ordinal);
        Parallel.ForEach(byKey, group => results[group.Key] = Check([.. group], initialValue, timeout));
        return new PerKeyLinearizabilityResult(new Dictionary<string, LinearizabilityResult>(results, StringComparer.Ordinal));
    }

    private static Operation[] Relevant(IReadOnlyList<Operation> history)
    {
        var relevant = new List<Operation>(history.Count);
        foreach (var operation in history)
        {
            switch (operation.Outcome)
            {
                case OperationOutcome.Ok:
                    if (operation.RespondedAt < operation.InvokedAt || operation.RespondedAt == Operation.Infinity)
                    {
                        throw new ArgumentException($"Completed operation with an impossible response time: {operation}.", nameof(history));
                    }

                    relevant.Add(operation);
                    break;
                case OperationOutcome.Unknown when operation.Kind != OperationKind.Read:
                    relevant.Add(operation);
                    break;
                default:
                    break;
            }
        }

        return [.. relevant];
    }

    /// <summary>The register's value after <paramref name="order"/>, which the search found legal.</summary>
    private static string? Replay(List<Operation> order, string? initialValue)
    {
        var state = initialValue;
        foreach (var operation in order)
        {
            if (!RegisterModel.Step(state, operation, out state))
            {
                throw new InvalidOperationException($"Internal error: the search linearized an illegal step {operation}.");
            }
        }

        return state;
    }

    /// <summary>
    /// Why the search could not extend <paramref name="prefix"/> (after which the register holds <paramref name="state"/>):
    /// first the remaining operations that can never be linearized (they need a value the register does not hold and
    /// that no remaining operation invoked before their response writes), then the candidates to come next (invoked
    /// before the first pending response), each with the reason.
    /// </summary>
    private static List<(Operation Operation, bool Doomed, string Reason)> Stuck(Operation[] operations, int[] prefix, string? state)
    {
        var done = new bool[operations.Length];
        foreach (var index in prefix)
        {
            done[index] = true;
        }

        var remaining = operations.Where((_, i) => !done[i]).ToList();

        // The earliest invocation of a remaining operation that can write each value (the empty key stands for null).
        var firstWriter = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var writer in remaining)
        {
            var writes = writer.Kind switch
            {
                OperationKind.Write => true,
                OperationKind.Delete => true,
                OperationKind.CompareAndSet => writer.Swapped || writer.Outcome != OperationOutcome.Ok,
                _ => false,
            };
            if (writes)
            {
                var written = writer.Kind == OperationKind.Delete || writer.Value is null ? "" : "=" + writer.Value;
                firstWriter[written] = Math.Min(firstWriter.GetValueOrDefault(written, Operation.Infinity), writer.InvokedAt);
            }
        }

        var stuck = new List<(Operation Operation, bool Doomed, string Reason)>();
        foreach (var operation in remaining.Where(operation => operation.Outcome == OperationOutcome.Ok).OrderBy(operation => operation.RespondedAt))
        {
            var needs = operation.Kind switch
            {
                OperationKind.Read => (true, operation.Value),
                OperationKind.CompareAndSet when operation.Swapped => (true, operation.Expected),
                _ => (false, null),
            };
            if (needs.Item1
                && !string.Equals(needs.Item2, state, StringComparison.Ordinal)
                && firstWriter.GetValueOrDefault(needs.Item2 is null ? "" : "=" + needs.Item2, Operation.Infinity) > operation.RespondedAt)
            {
                stuck.Add((operation, true, $"needs {Operation.FormatValue(needs.Item2)} but the register holds {Operation.FormatValue(state)}, "
                    + "and no remaining operation invoked before it responded can write that value"));
            }
        }

        var firstResponse = remaining.Where(operation => operation.Outcome == OperationOutcome.Ok).Select(operation => operation.RespondedAt).DefaultIfEmpty(Operation.Infinity).Min();
        foreach (var operation in remaining
            .Where(operation => operation.InvokedAt <= firstResponse && !stuck.Any(entry => ReferenceEquals(entry.Operation, operation)))
            .OrderBy(operation => operation.Outcome == OperationOutcome.Ok ? operation.RespondedAt : Operation.Infinity)
            .ThenBy(operation => operation.InvokedAt))
        {
            stuck.Add((operation, false, RegisterModel.Explain(state, operation)));
        }

        return stuck;
    }

    private static string Explain(
        string key,
        IReadOnlyList<Operation> history,
        Operation[] operations,
        string? initialValue,
        LinearizabilitySearch.SearchOutcome outcome,
        List<Operation> order,
        string? state,
        List<(Operation Operation, bool Doomed, string Reason)> stuck,
        TimeSpan elapsed)
    {
        var origin = history.Count == 0 ? 0 : history.Min(operation => operation.InvokedAt);
        var unknown = operations.Count(operation => operation.Outcome != OperationOutcome.Ok);
        var ignored = history.Count - operations.Length;
        var keyText = key.Length == 0 ? "The history" : $"The history of key '{key}'";
        var text = new StringBuilder();
        text.Append($"{keyText} ({operations.Length} operations checked: {operations.Length - unknown} completed, {unknown} of unknown outcome; ")
            .Append($"{ignored} failed or unknown reads ignored; initial value {Operation.FormatValue(initialValue)}) ");
        switch (outcome.Verdict)
        {
            case LinearizabilityVerdict.Linearizable:
                text.Append($"is linearizable ({outcome.Explored} configurations explored in {elapsed.TotalMilliseconds:0} ms).");
                return text.ToString();
            case LinearizabilityVerdict.Inconclusive:
                text.Append($"could not be decided within the time budget ({outcome.Explored} configurations explored in {elapsed.TotalMilliseconds:0} ms); ")
                    .Append($"the longest linearizable prefix found has {order.Count} operations.");
                return text.ToString();
            default:
                break;
        }

        text.Append($"is NOT linearizable ({outcome.Explored} configurations explored in {elapsed.TotalMilliseconds:0} ms).\n")
            .Append($"Longest linearizable prefix found: {order.Count} of {operations.Length} operations, after which the register holds ")
            .Append($"{Operation.FormatValue(state)} (every other order was tried and got no further). Times are ticks relative to the first invocation.\n");
        if (order.Count > 0)
        {
            text.Append(order.Count > ListedPrefixOperations ? $"Its last {ListedPrefixOperations} operations:\n" : "In order:\n");
            foreach (var operation in order.Skip(Math.Max(0, order.Count - ListedPrefixOperations)))
            {
                text.Append($"  {History.FormatInterval(operation, origin)} {operation.Describe()}\n");
            }
        }

        var doomed = stuck.Where(entry => entry.Doomed).ToList();
        if (doomed.Count > 0)
        {
            text.Append("These operations can no longer be linearized at all:\n");
            AppendStuck(text, doomed, origin);
        }

        var candidates = stuck.Where(entry => !entry.Doomed).ToList();
        var blocking = candidates.Select(entry => entry.Operation).FirstOrDefault(operation => operation.Outcome == OperationOutcome.Ok);
        if (blocking is not null)
        {
            text.Append($"{blocking.Describe()} responded at +{blocking.RespondedAt - origin}, so it had to come before anything invoked later; ")
                .Append("the candidates to come next were:\n");
            AppendStuck(text, candidates, origin);
        }

        return text.ToString();
    }

    private static void AppendStuck(StringBuilder text, List<(Operation Operation, bool Doomed, string Reason)> entries, long origin)
    {
        foreach (var (operation, _, reason) in entries.Take(ListedCandidates))
        {
            text.Append($"  {History.FormatInterval(operation, origin)} {operation.Describe()}: {reason}\n");
        }

        if (entries.Count > ListedCandidates)
        {
            text.Append($"  ... and {entries.Count - ListedCandidates} more\n");
        }
    }
}
