namespace Chord.Dht.Tests.Linearizability;

public class HistoryRecorderTests
{
    [Fact]
    public void Records_intervals_from_the_clock_and_values_from_completions()
    {
        long now = 0;
        var recorder = new HistoryRecorder(() => now += 10);

        var write = recorder.Invoke("c1", OperationKind.Write, "a", key: "k");
        var read = recorder.Invoke("c2", OperationKind.Read, key: "k");
        recorder.Ok(write);
        recorder.Ok(read, "a");
        var history = recorder.ToHistory();

        Assert.Equal(2, history.Count);
        Assert.Equal(Operation.Write("c1", "a", 10, 30, "k") with { Id = 0 }, history[0]);
        Assert.Equal(Operation.Read("c2", "a", 20, 40, "k") with { Id = 1 }, history[1]);
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Pending_operations_are_reported_as_unknown()
    {
        var recorder = new HistoryRecorder();
        recorder.Ok(recorder.Invoke("c1", OperationKind.Write, "a"));
        recorder.Invoke("c1", OperationKind.Write, "b");
        var read = recorder.Invoke("c2", OperationKind.Read);
        recorder.Ok(read, "b");

        var history = recorder.ToHistory();

        Assert.Equal(1, recorder.PendingCount);
        Assert.Equal(OperationOutcome.Unknown, history[1].Outcome);
        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Failed_and_unknown_completions_are_recorded()
    {
        var recorder = new HistoryRecorder();
        recorder.Fail(recorder.Invoke("c1", OperationKind.Write, "failed"));
        recorder.Unknown(recorder.Invoke("c1", OperationKind.Write, "maybe"));
        recorder.Ok(recorder.Invoke("c2", OperationKind.Read), "maybe");
        recorder.Ok(recorder.Invoke("c2", OperationKind.Read), "failed");

        var history = recorder.ToHistory();

        Assert.Equal([OperationOutcome.Failed, OperationOutcome.Unknown, OperationOutcome.Ok, OperationOutcome.Ok], history.Select(operation => operation.Outcome));
        Assert.Equal(Operation.Infinity, history[1].RespondedAt);
        var result = LinearizabilityChecker.Check(history);
        Assert.False(result.IsLinearizable);
        Assert.Contains("read -> 'failed'", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Compare_and_set_is_recorded_with_its_result()
    {
        var recorder = new HistoryRecorder();
        recorder.Ok(recorder.Invoke("c1", OperationKind.Write, "a"));
        var cas = recorder.InvokeCompareAndSet("c2", "a", "b");
        var operation = recorder.Ok(cas, swapped: true);

        Assert.Equal(OperationKind.CompareAndSet, operation.Kind);
        Assert.Equal(("a", "b", true), (operation.Expected, operation.Value, operation.Swapped));
        Assert.True(LinearizabilityChecker.Check(recorder.ToHistory()).IsLinearizable);
    }

    [Fact]
    public void Misuse_is_rejected()
    {
        var recorder = new HistoryRecorder();
        var write = recorder.Invoke("c1", OperationKind.Write, "a");
        var read = recorder.Invoke("c1", OperationKind.Read);

        Assert.Throws<ArgumentException>(() => recorder.Ok(write, "a"));
        Assert.Throws<ArgumentException>(() => recorder.Ok(read, swapped: true));
        Assert.Throws<ArgumentException>(() => recorder.Invoke("c1", OperationKind.CompareAndSet, "a"));
        Assert.Throws<ArgumentException>(() => new HistoryRecorder().Ok(read, "a"));
        recorder.Ok(write);
        Assert.Throws<InvalidOperationException>(() => recorder.Ok(write));
    }

    [Fact]
    public void Concurrent_clients_of_a_locked_register_produce_a_linearizable_history()
    {
        var recorder = new HistoryRecorder();
        var register = new LockedRegister();

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, client =>
        {
            var random = new Random(client);
            for (var i = 0; i < 150; i++)
            {
                var name = $"c{client}";
                switch (random.Next(3))
                {
                    case 0:
                        var read = recorder.Invoke(name, OperationKind.Read);
                        recorder.Ok(read, register.Read());
                        break;
                    case 1:
                        var value = $"{name}-{i}";
                        var write = recorder.Invoke(name, OperationKind.Write, value);
                        register.Write(value);
                        recorder.Ok(write);
                        break;
                    default:
                        var delete = recorder.Invoke(name, OperationKind.Delete);
                        register.Write(null);
                        recorder.Ok(delete);
                        break;
                }
            }
        });

        var history = recorder.ToHistory();
        var result = LinearizabilityChecker.Check(history);

        Assert.Equal(1_200, history.Count);
        Assert.Equal(0, recorder.PendingCount);
        Assert.True(result.IsLinearizable, result.Explanation);
    }

    [Fact]
    public void A_register_serving_stale_reads_is_caught_through_the_recorder()
    {
        var recorder = new HistoryRecorder();
        var register = new LockedRegister();
        string? cache = null;

        foreach (var value in new[] { "a", "b" })
        {
            var write = recorder.Invoke("writer", OperationKind.Write, value);
            register.Write(value);
            cache ??= value;
            recorder.Ok(write);
        }

        var read = recorder.Invoke("reader", OperationKind.Read);
        recorder.Ok(read, cache);

        var result = LinearizabilityChecker.Check(recorder.ToHistory());

        Assert.False(result.IsLinearizable);
        Assert.Contains("read -> 'a': needs 'a' but the register holds 'b'", result.Explanation, StringComparison.Ordinal);
    }

    private sealed class LockedRegister
    {
        private readonly Lock _lock = new();
        private string? _value;

        public string? Read()
        {
            lock (_lock)
            {
                return _value;
            }
        }

        public void Write(string? value)
        {
            lock (_lock)
            {
                _value = value;
            }
        }
    }
}
