namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// Generates histories that are linearizable by construction: simulated clients run operations against a real atomic
/// register, each taking effect at a random point strictly inside its interval (timed-out writes possibly later, or never).
/// </summary>
internal static class RandomRegisterHistory
{
    /// <param name="seed">Seed of the generator.</param>
    /// <param name="clients">Concurrent clients.</param>
    /// <param name="operationsPerClient">Operations each client issues.</param>
    /// <param name="valuePool">0 = every write a fresh value; otherwise writes pick among this many values.</param>
    /// <param name="unknownRate">Probability that a write, delete or compare-and-set times out.</param>
    /// <param name="failedRate">Probability that a write fails before taking effect.</param>
    /// <param name="key">The key of every operation.</param>
    public static History Generate(
        int seed, int clients, int operationsPerClient, int valuePool = 0, double unknownRate = 0, double failedRate = 0, string key = "")
    {
        var random = new Random(seed);
        var fresh = 0;
        var drafts = new List<(Operation Operation, long Point)>();
        for (var client = 0; client < clients; client++)
        {
            var now = (long)random.Next(0, 20);
            for (var i = 0; i < operationsPerClient; i++)
            {
                var invoked = now + random.Next(0, 10);
                var responded = invoked + random.Next(2, 60);
                var point = invoked + random.Next(1, (int)(responded - invoked));
                var value = valuePool == 0 ? $"v{fresh++}" : $"v{random.Next(valuePool)}";
                var roll = random.NextDouble();
                var operation = roll switch
                {
                    < 0.5 => Operation.Read($"c{client}", null, invoked, responded, key),
                    < 0.8 => Operation.Write($"c{client}", value, invoked, responded, key),
                    < 0.9 => Operation.Delete($"c{client}", invoked, responded, key),
                    _ => Operation.CompareAndSet(
                        $"c{client}", valuePool == 0 ? $"v{random.Next(Math.Max(1, fresh))}" : $"v{random.Next(valuePool)}", value, false, invoked, responded, key),
                };
                if (operation.Kind != OperationKind.Read && random.NextDouble() < unknownRate)
                {
                    // Timed out: takes effect at some later point (maybe after the client gave up), or never.
                    operation = operation with { Outcome = OperationOutcome.Unknown, RespondedAt = Operation.Infinity };
                    point = random.Next(2) == 0 ? long.MaxValue : invoked + random.Next(1, 200);
                }
                else if (operation.Kind == OperationKind.Write && random.NextDouble() < failedRate)
                {
                    operation = operation with { Outcome = OperationOutcome.Failed };
                    point = long.MaxValue;
                }

                drafts.Add((operation, point));
                now = responded;
            }
        }

        // Apply in linearization-point order to a real register to fill in the responses.
        string? register = null;
        var completed = new Operation[drafts.Count];
        var order = Enumerable.Range(0, drafts.Count).OrderBy(i => drafts[i].Point).ThenBy(_ => random.Next()).ToList();
        foreach (var i in order)
        {
            var (operation, point) = drafts[i];
            if (point == long.MaxValue)
            {
                completed[i] = operation;
                continue;
            }

            switch (operation.Kind)
            {
                case OperationKind.Read:
                    operation = operation with { Value = register };
                    break;
                case OperationKind.Write:
                    register = operation.Value;
                    break;
                case OperationKind.Delete:
                    register = null;
                    break;
                case OperationKind.CompareAndSet:
                    var swapped = string.Equals(register, operation.Expected, StringComparison.Ordinal);
                    register = swapped ? operation.Value : register;
                    operation = operation with { Swapped = swapped };
                    break;
                default:
                    throw new InvalidOperationException(operation.Kind.ToString());
            }

            completed[i] = operation;
        }

        return new History(completed.OrderBy(operation => operation.InvokedAt));
    }
}
