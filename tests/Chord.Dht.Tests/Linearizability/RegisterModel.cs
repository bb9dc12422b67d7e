namespace Chord.Dht.Tests.Linearizability;

/// <summary>The sequential specification of one key: a register holding a value, or nothing (null).</summary>
internal static class RegisterModel
{
    /// <summary>Applies <paramref name="operation"/> to <paramref name="state"/>: false if the response is impossible from that state.</summary>
    public static bool Step(string? state, Operation operation, out string? next)
    {
        switch (operation.Kind)
        {
            case OperationKind.Read:
                next = state;
                return operation.Outcome != OperationOutcome.Ok || string.Equals(state, operation.Value, StringComparison.Ordinal);
            case OperationKind.Write:
                next = operation.Value;
                return true;
            case OperationKind.Delete:
                next = null;
                return true;
            case OperationKind.CompareAndSet:
                var matches = string.Equals(state, operation.Expected, StringComparison.Ordinal);
                if (operation.Outcome != OperationOutcome.Ok)
                {
                    next = matches ? operation.Value : state;
                    return true;
                }

                next = operation.Swapped ? operation.Value : state;
                return operation.Swapped == matches;
            default:
                throw new ArgumentOutOfRangeException(nameof(operation), operation.Kind, "Unknown operation kind.");
        }
    }

    /// <summary>Why <paramref name="operation"/> cannot come next when the register holds <paramref name="state"/>.</summary>
    public static string Explain(string? state, Operation operation)
    {
        if (Step(state, operation, out _))
        {
            return $"legal from {Operation.FormatValue(state)}, but no linearization continues after it";
        }

        return operation.Kind switch
        {
            OperationKind.Read => $"returned {Operation.FormatValue(operation.Value)} but the register holds {Operation.FormatValue(state)}",
            OperationKind.CompareAndSet when operation.Swapped =>
                $"swapped, but the register holds {Operation.FormatValue(state)}, not the expected {Operation.FormatValue(operation.Expected)}",
            OperationKind.CompareAndSet => $"did not swap, but the register holds the expected {Operation.FormatValue(state)}",
            _ => "illegal",
        };
    }
}
