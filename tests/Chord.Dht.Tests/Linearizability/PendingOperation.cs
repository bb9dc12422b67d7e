namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// An operation that has been invoked through <see cref="HistoryRecorder.Invoke"/> and not yet completed:
/// hand it back to <see cref="HistoryRecorder.Ok(PendingOperation, string?)"/>, <see cref="HistoryRecorder.Fail"/> or <see cref="HistoryRecorder.Unknown"/>.
/// </summary>
public sealed class PendingOperation
{
    internal PendingOperation(HistoryRecorder recorder, long sequence, Operation invocation)
    {
        Recorder = recorder;
        Sequence = sequence;
        Invocation = invocation;
    }

    /// <summary>The client that issued the operation.</summary>
    public string Client => Invocation.Client;

    /// <summary>The key of the register.</summary>
    public string Key => Invocation.Key;

    /// <summary>What the client asked for.</summary>
    public OperationKind Kind => Invocation.Kind;

    /// <summary>The value written (Write), or the new value (CompareAndSet).</summary>
    public string? Value => Invocation.Value;

    /// <summary>The expected value (CompareAndSet only).</summary>
    public string? Expected => Invocation.Expected;

    /// <summary>When the operation was invoked.</summary>
    public long InvokedAt => Invocation.InvokedAt;

    internal HistoryRecorder Recorder { get; }

    internal long Sequence { get; }

    internal Operation Invocation { get; }

    /// <inheritdoc/>
    public override string ToString() => $"pending {Invocation.Describe()} @{InvokedAt}";
}
