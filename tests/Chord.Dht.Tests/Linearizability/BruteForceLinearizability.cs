namespace Chord.Dht.Tests.Linearizability;

/// <summary>An obviously-correct, exponential oracle for small histories: tries every order that respects real time.</summary>
internal static class BruteForceLinearizability
{
    public static bool IsLinearizable(IReadOnlyList<Operation> history, string? initialValue = null)
    {
        var operations = history
            .Where(operation => operation.Outcome == OperationOutcome.Ok
                || (operation.Outcome == OperationOutcome.Unknown && operation.Kind != OperationKind.Read))
            .ToList();
        return Extend(operations, new bool[operations.Count], initialValue);
    }

    private static bool Extend(List<Operation> operations, bool[] done, string? state)
    {
        if (Enumerable.Range(0, operations.Count).All(i => done[i] || operations[i].Outcome != OperationOutcome.Ok))
        {
            return true;
        }

        for (var i = 0; i < operations.Count; i++)
        {
            if (done[i] || MustWait(operations, done, i) || !RegisterModel.Step(state, operations[i], out var next))
            {
                continue;
            }

            done[i] = true;
            var found = Extend(operations, done, next);
            done[i] = false;
            if (found)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether some other pending completed operation responded strictly before <paramref name="candidate"/> was invoked.</summary>
    private static bool MustWait(List<Operation> operations, bool[] done, int candidate) =>
        Enumerable.Range(0, operations.Count).Any(j => !done[j]
            && j != candidate
            && operations[j].Outcome == OperationOutcome.Ok
            && operations[j].RespondedAt < operations[candidate].InvokedAt);
}
