namespace Chord.Dht.Tests.Linearizability;

public class RandomizedLinearizabilityTests
{
    public static TheoryData<int, int, int, int, double> Shapes => new()
    {
        // seed, clients, operations per client, value pool (0 = unique values), unknown-outcome rate
        { 1, 2, 50, 0, 0.0 },
        { 2, 4, 50, 0, 0.0 },
        { 3, 8, 40, 3, 0.0 },
        { 4, 16, 20, 2, 0.0 },
        { 5, 5, 60, 0, 0.1 },
        { 6, 8, 40, 3, 0.05 },
        { 7, 16, 25, 4, 0.05 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Histories_of_an_atomic_register_are_linearizable(int seed, int clients, int perClient, int valuePool, double unknownRate)
    {
        var history = RandomRegisterHistory.Generate(seed, clients, perClient, valuePool, unknownRate, failedRate: 0.05);

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation + "\n" + history.Describe());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Corrupting_one_read_to_an_impossible_value_is_caught(int seed, int clients, int perClient, int valuePool, double unknownRate)
    {
        var history = RandomRegisterHistory.Generate(seed, clients, perClient, valuePool, unknownRate, failedRate: 0.05);
        var reads = history.Where(operation => operation.Kind == OperationKind.Read && operation.Outcome == OperationOutcome.Ok).ToList();
        var victim = reads[new Random(seed).Next(reads.Count)];
        var corrupted = new History(history.Select(operation => operation.Id == victim.Id ? operation with { Value = "never-written" } : operation));

        var result = LinearizabilityChecker.Check(corrupted);

        Assert.False(result.IsLinearizable, $"corrupted {victim}");
        Assert.Equal(LinearizabilityVerdict.NotLinearizable, result.Verdict);
        Assert.Contains(result.Unplaceable, operation => operation.Id == victim.Id);
        Assert.Contains("'never-written'", result.Explanation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Reading_a_value_from_the_future_is_caught(int seed)
    {
        var history = RandomRegisterHistory.Generate(seed, clients: 6, operationsPerClient: 40);
        var (read, write) = history
            .Where(operation => operation.Kind == OperationKind.Read && operation.Outcome == OperationOutcome.Ok)
            .SelectMany(read => history
                .Where(write => write.Kind == OperationKind.Write && write.Outcome == OperationOutcome.Ok && write.InvokedAt > read.RespondedAt)
                .Select(write => (read, write)))
            .First();
        var corrupted = new History(history.Select(operation => operation.Id == read.Id ? operation with { Value = write.Value } : operation));

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(corrupted).IsLinearizable, $"{read} now returns the value of {write}");
    }

    [Fact]
    public void Agrees_with_brute_force_on_small_random_histories()
    {
        var values = new[] { null, "a", "b" };
        var linearizable = 0;
        var notLinearizable = 0;
        for (var seed = 0; seed < 4_000; seed++)
        {
            var random = new Random(seed);
            var history = new History();
            var count = random.Next(1, 9);
            for (var i = 0; i < count; i++)
            {
                var invoked = random.Next(0, 30);
                var responded = invoked + random.Next(0, 15);
                var value = values[random.Next(values.Length)];
                var operation = random.Next(10) switch
                {
                    < 4 => Operation.Read($"c{i}", value, invoked, responded),
                    < 7 => Operation.Write($"c{i}", value, invoked, responded),
                    7 => Operation.Delete($"c{i}", invoked, responded),
                    _ => Operation.CompareAndSet($"c{i}", values[random.Next(values.Length)], value, random.Next(2) == 0, invoked, responded),
                };
                var outcome = random.Next(10);
                operation = outcome switch
                {
                    < 2 => operation with { Outcome = OperationOutcome.Unknown, RespondedAt = Operation.Infinity },
                    2 => operation with { Outcome = OperationOutcome.Failed },
                    _ => operation,
                };
                history.Add(operation);
            }

            var initial = values[random.Next(values.Length)];
            var expected = BruteForceLinearizability.IsLinearizable(history, initial);
            var result = LinearizabilityChecker.Check(history, initial);

            Assert.True(expected == result.IsLinearizable, $"seed {seed}: brute force says {expected}\n{result.Explanation}\n{history.Describe()}");
            _ = expected ? linearizable++ : notLinearizable++;
        }

        // Both verdicts must be well represented, or the comparison proves little.
        Assert.InRange(linearizable, 400, 3_600);
        Assert.InRange(notLinearizable, 400, 3_600);
    }

    [Fact]
    public void Agrees_with_brute_force_on_small_corrupted_register_histories()
    {
        // Histories of a real register with timeouts, failures, deletes and compare-and-sets over few values, one read
        // possibly altered: the subtle cases (unknown writes needed later, interchangeable writes) are common here.
        var values = new[] { null, "v0", "v1", "v2" };
        var linearizable = 0;
        var notLinearizable = 0;
        for (var seed = 0; seed < 4_000; seed++)
        {
            var random = new Random(seed);
            var history = RandomRegisterHistory.Generate(
                seed, clients: random.Next(2, 5), operationsPerClient: random.Next(2, 4), valuePool: random.Next(1, 4), unknownRate: 0.3, failedRate: 0.1);
            var reads = history.Where(operation => operation.Kind == OperationKind.Read).ToList();
            if (reads.Count > 0 && random.Next(2) == 0)
            {
                var victim = reads[random.Next(reads.Count)];
                history = new History(history.Select(operation =>
                    operation.Id == victim.Id ? operation with { Value = values[random.Next(values.Length)] } : operation));
            }

            var expected = BruteForceLinearizability.IsLinearizable(history);
            var result = LinearizabilityChecker.Check(history);

            Assert.True(expected == result.IsLinearizable, $"seed {seed}: brute force says {expected}\n{result.Explanation}\n{history.Describe()}");
            _ = expected ? linearizable++ : notLinearizable++;
        }

        Assert.InRange(linearizable, 400, 3_600);
        Assert.InRange(notLinearizable, 400, 3_600);
    }

    [Fact]
    public void Many_small_register_histories_full_of_timeouts_are_linearizable()
    {
        // Linearizable by construction; few values and many unknown outcomes exercise the cache's dominance rules.
        for (var seed = 0; seed < 20_000; seed++)
        {
            var random = new Random(seed);
            var history = RandomRegisterHistory.Generate(
                seed, clients: random.Next(2, 5), operationsPerClient: random.Next(2, 7), valuePool: random.Next(1, 4), unknownRate: 0.25, failedRate: 0.1);

            var result = LinearizabilityChecker.Check(history);

            Assert.True(result.IsLinearizable, $"seed {seed}\n{result.Explanation}\n{history.Describe()}");
        }
    }

    [Fact]
    public void Two_thousand_operations_from_eight_clients_are_checked()
    {
        var history = RandomRegisterHistory.Generate(seed: 42, clients: 8, operationsPerClient: 250, valuePool: 3, unknownRate: 0.01, failedRate: 0.01);
        Assert.Equal(2_000, history.Count);

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation);
    }

    [Fact]
    public void Two_thousand_operations_with_a_late_stale_read_are_refuted()
    {
        var history = RandomRegisterHistory.Generate(seed: 43, clients: 8, operationsPerClient: 250, valuePool: 3);
        var last = history.Where(operation => operation.Kind == OperationKind.Read).MaxBy(operation => operation.InvokedAt)!;
        var corrupted = new History(history.Select(operation => operation.Id == last.Id ? operation with { Value = "stale" } : operation));

        var result = LinearizabilityChecker.Check(corrupted);

        Assert.Equal(LinearizabilityVerdict.NotLinearizable, result.Verdict);
        Assert.True(result.Linearization.Count > 1_900, result.Explanation);
    }

    [Fact]
    public void Multi_key_histories_are_checked_per_key()
    {
        var history = new History(Enumerable.Range(0, 20)
            .SelectMany(key => RandomRegisterHistory.Generate(seed: 100 + key, clients: 6, operationsPerClient: 30, valuePool: 3, key: $"k{key}"))
            .OrderBy(operation => operation.InvokedAt));

        var result = LinearizabilityChecker.CheckPerKey(history);

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Equal(20, result.Results.Count);
        Assert.Equal(history.Count, result.Results.Values.Sum(perKey => perKey.OperationCount) + history.Count(IsIgnored));
    }

    private static bool IsIgnored(Operation operation) =>
        operation.Outcome == OperationOutcome.Failed || (operation.Outcome == OperationOutcome.Unknown && operation.Kind == OperationKind.Read);
}
