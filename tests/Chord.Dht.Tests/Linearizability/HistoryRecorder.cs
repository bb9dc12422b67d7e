using System.Diagnostics;

namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// Records a history from concurrent clients. Thread-safe. Call <see cref="Invoke"/> right before issuing a request
/// and <see cref="Ok(PendingOperation, string?)"/> / <see cref="Fail"/> / <see cref="Unknown"/> right after it ends,
/// so that each recorded interval contains the real one.
/// </summary>
public sealed class HistoryRecorder
{
    private readonly Lock _lock = new();
    private readonly Func<long> _clock;
    private readonly Dictionary<long, PendingOperation> _pending = [];
    private readonly List<(long Sequence, Operation Operation)> _completed = [];
    private long _nextSequence;

    /// <summary>A recorder timing operations with <paramref name="clock"/> (default <see cref="Stopwatch.GetTimestamp"/>), which must be monotonic.</summary>
    public HistoryRecorder(Func<long>? clock = null)
    {
        _clock = clock ?? Stopwatch.GetTimestamp;
    }

    /// <summary>How many operations have been invoked.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count + _completed.Count;
            }
        }
    }

    /// <summary>How many invoked operations have not been completed yet.</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>
    /// Starts a Read, Write or Delete of <paramref name="key"/> by <paramref name="client"/>; <paramref name="value"/> is the value
    /// written (Write), and is ignored otherwise. Use <see cref="InvokeCompareAndSet"/> for compare-and-set.
    /// </summary>
    public PendingOperation Invoke(string client, OperationKind kind, string? value = null, string key = "")
    {
        if (kind == OperationKind.CompareAndSet)
        {
            throw new ArgumentException("Use InvokeCompareAndSet for compare-and-set.", nameof(kind));
        }

        return Start(client, key, kind, kind == OperationKind.Write ? value : null, expected: null);
    }

    /// <summary>Starts a compare-and-set of <paramref name="key"/>: set <paramref name="newValue"/> if the value is <paramref name="expected"/>.</summary>
    public PendingOperation InvokeCompareAndSet(string client, string? expected, string? newValue, string key = "") =>
        Start(client, key, OperationKind.CompareAndSet, newValue, expected);

    /// <summary>
    /// Completes <paramref name="operation"/> successfully. For a Read, <paramref name="readValue"/> is the value returned
    /// (null = not found); for a Write or Delete it must be null. For a compare-and-set use <see cref="Ok(PendingOperation, bool)"/>.
    /// </summary>
    public Operation Ok(PendingOperation operation, string? readValue = null)
    {
        var now = _clock();
        switch (operation.Kind)
        {
            case OperationKind.CompareAndSet:
                throw new ArgumentException("Complete a compare-and-set with Ok(operation, swapped).", nameof(operation));
            case OperationKind.Read:
                return Complete(operation, operation.Invocation with { Value = readValue, RespondedAt = now });
            default:
                if (readValue is not null)
                {
                    throw new ArgumentException($"A {operation.Kind} returns no value; got {Operation.FormatValue(readValue)}.", nameof(readValue));
                }

                return Complete(operation, operation.Invocation with { RespondedAt = now });
        }
    }

    /// <summary>Completes a compare-and-set successfully, reporting whether it <paramref name="swapped"/>.</summary>
    public Operation Ok(PendingOperation operation, bool swapped)
    {
        var now = _clock();
        if (operation.Kind != OperationKind.CompareAndSet)
        {
            throw new ArgumentException($"Ok(operation, swapped) is for compare-and-set, not {operation.Kind}.", nameof(operation));
        }

        return Complete(operation, operation.Invocation with { Swapped = swapped, RespondedAt = now });
    }

    /// <summary>Records that <paramref name="operation"/> definitely did not take effect; the checker ignores it.</summary>
    public Operation Fail(PendingOperation operation)
    {
        var now = _clock();
        return Complete(operation, operation.Invocation with { RespondedAt = now, Outcome = OperationOutcome.Failed });
    }

    /// <summary>
    /// Records that <paramref name="operation"/> may or may not have taken effect (timeout, lost connection):
    /// the checker lets it take effect at any point after its invocation, or never.
    /// </summary>
    public Operation Unknown(PendingOperation operation) =>
        Complete(operation, operation.Invocation with { RespondedAt = Operation.Infinity, Outcome = OperationOutcome.Unknown });

    /// <summary>
    /// A snapshot of the history, ordered (and numbered) by invocation. Operations still pending are included
    /// with outcome <see cref="OperationOutcome.Unknown"/>.
    /// </summary>
    public History ToHistory()
    {
        List<(long Sequence, Operation Operation)> all;
        lock (_lock)
        {
            all = [.. _completed];
            all.AddRange(_pending.Values.Select(pending => (pending.Sequence, pending.Invocation with { Outcome = OperationOutcome.Unknown })));
        }

        return new History(all.OrderBy(entry => entry.Sequence).Select(entry => entry.Operation));
    }

    private PendingOperation Start(string client, string key, OperationKind kind, string? value, string? expected)
    {
        lock (_lock)
        {
            var sequence = _nextSequence++;
            var invocation = new Operation
            {
                Id = sequence,
                Client = client,
                Key = key,
                Kind = kind,
                Value = value,
                Expected = expected,
                InvokedAt = _clock(),
            };
            var pending = new PendingOperation(this, sequence, invocation);
            _pending.Add(sequence, pending);
            return pending;
        }
    }

    private Operation Complete(PendingOperation operation, Operation completed)
    {
        if (!ReferenceEquals(operation.Recorder, this))
        {
            throw new ArgumentException("The operation was invoked on another recorder.", nameof(operation));
        }

        if (completed.Outcome != OperationOutcome.Unknown && completed.RespondedAt < completed.InvokedAt)
        {
            throw new InvalidOperationException($"The clock went backwards: {completed}.");
        }

        lock (_lock)
        {
            if (!_pending.Remove(operation.Sequence))
            {
                throw new InvalidOperationException($"{operation} was already completed.");
            }

            _completed.Add((operation.Sequence, completed));
            return completed;
        }
    }
}
