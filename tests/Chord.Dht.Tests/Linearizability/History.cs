using System.Collections;
using System.Globalization;
using System.Text;

namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// An ordered collection of operations, numbered (<see cref="Operation.Id"/>) in the order they are added.
/// The fluent helpers build hand-written histories for tests; <see cref="HistoryRecorder.ToHistory"/> builds recorded ones.
/// </summary>
public sealed class History : IReadOnlyList<Operation>
{
    private readonly List<Operation> _operations = [];

    /// <summary>An empty history.</summary>
    public History()
    {
    }

    /// <summary>A history of <paramref name="operations"/>, renumbered in order.</summary>
    public History(IEnumerable<Operation> operations)
    {
        foreach (var operation in operations)
        {
            Add(operation);
        }
    }

    /// <inheritdoc/>
    public int Count => _operations.Count;

    /// <inheritdoc/>
    public Operation this[int index] => _operations[index];

    /// <summary>Appends <paramref name="operation"/> with <see cref="Operation.Id"/> set to its position, and returns the stored copy.</summary>
    public Operation Add(Operation operation)
    {
        var numbered = operation with { Id = _operations.Count };
        _operations.Add(numbered);
        return numbered;
    }

    /// <summary>Appends a completed write.</summary>
    public History Write(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        Append(Operation.Write(client, value, invokedAt, respondedAt, key));

    /// <summary>Appends a completed read that returned <paramref name="value"/> (null = not found).</summary>
    public History Read(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        Append(Operation.Read(client, value, invokedAt, respondedAt, key));

    /// <summary>Appends a completed delete.</summary>
    public History Delete(string client, long invokedAt, long respondedAt, string key = "") =>
        Append(Operation.Delete(client, invokedAt, respondedAt, key));

    /// <summary>Appends a completed compare-and-set.</summary>
    public History CompareAndSet(
        string client, string? expected, string? newValue, bool swapped, long invokedAt, long respondedAt, string key = "") =>
        Append(Operation.CompareAndSet(client, expected, newValue, swapped, invokedAt, respondedAt, key));

    /// <summary>Appends a write that timed out (may take effect at any point after <paramref name="invokedAt"/>, or never).</summary>
    public History UnknownWrite(string client, string? value, long invokedAt, string key = "") =>
        Append(Operation.UnknownWrite(client, value, invokedAt, key));

    /// <summary>Appends a write that definitely did not take effect.</summary>
    public History FailedWrite(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        Append(Operation.FailedWrite(client, value, invokedAt, respondedAt, key));

    /// <summary>The operations grouped by <see cref="Operation.Key"/>, each group in history order.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Operation>> ByKey() =>
        _operations
            .GroupBy(operation => operation.Key, StringComparer.Ordinal)
            .ToDictionary(group => group.Key, group => (IReadOnlyList<Operation>)[.. group], StringComparer.Ordinal);

    /// <summary>A timeline, one operation a line, ordered by invocation, with times relative to the first invocation.</summary>
    public string Describe() => Describe(_operations);

    /// <summary>A timeline of <paramref name="operations"/>, ordered by invocation, with times relative to the first invocation.</summary>
    public static string Describe(IEnumerable<Operation> operations)
    {
        var ordered = operations.OrderBy(operation => operation.InvokedAt).ThenBy(operation => operation.Id).ToList();
        if (ordered.Count == 0)
        {
            return "(empty history)";
        }

        var origin = ordered[0].InvokedAt;
        var text = new StringBuilder();
        foreach (var operation in ordered)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {FormatInterval(operation, origin)} {operation.Describe()}").Append('\n');
        }

        return text.ToString();
    }

    /// <summary>The interval of <paramref name="operation"/> relative to <paramref name="origin"/>, e.g. <c>[+0, +25]</c>.</summary>
    public static string FormatInterval(Operation operation, long origin)
    {
        var end = operation.Outcome == OperationOutcome.Unknown || operation.RespondedAt == Operation.Infinity
            ? "inf"
            : $"+{operation.RespondedAt - origin}";
        return string.Create(CultureInfo.InvariantCulture, $"[+{operation.InvokedAt - origin}, {end}]");
    }

    /// <inheritdoc/>
    public IEnumerator<Operation> GetEnumerator() => _operations.GetEnumerator();

    /// <inheritdoc/>
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public override string ToString() => Describe();

    private History Append(Operation operation)
    {
        Add(operation);
        return this;
    }
}
