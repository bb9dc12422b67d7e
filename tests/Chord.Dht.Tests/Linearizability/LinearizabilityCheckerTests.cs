namespace Chord.Dht.Tests.Linearizability;

public class LinearizabilityCheckerTests
{
    [Fact]
    public void Empty_history_is_linearizable()
    {
        var result = LinearizabilityChecker.Check(new History());

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Equal(0, result.OperationCount);
    }

    [Fact]
    public void Sequential_write_then_read_of_that_value_is_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Read("c2", "a", 20, 30);

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Equal([0L, 1L], result.Linearization.Select(operation => operation.Id));
        Assert.Equal("a", result.StateAfterLinearization);
    }

    [Fact]
    public void Sequential_write_then_read_of_another_value_is_not_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Read("c2", "b", 20, 30);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Equal(LinearizabilityVerdict.NotLinearizable, result.Verdict);
    }

    [Fact]
    public void Read_before_any_write_returns_the_initial_value()
    {
        Assert.True(LinearizabilityChecker.Check(new History().Read("c1", null, 0, 10)).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(new History().Read("c1", "x", 0, 10)).IsLinearizable);
        Assert.True(LinearizabilityChecker.Check(new History().Read("c1", "x", 0, 10), initialValue: "x").IsLinearizable);
    }

    [Theory]
    [InlineData("old", true)]
    [InlineData("new", true)]
    [InlineData("other", false)]
    public void Read_overlapping_a_write_may_return_the_old_or_the_new_value(string read, bool linearizable)
    {
        var history = new History()
            .Write("c1", "old", 0, 10)
            .Write("c1", "new", 20, 40)
            .Read("c2", read, 25, 35);

        var result = LinearizabilityChecker.Check(history);

        Assert.Equal(linearizable, result.IsLinearizable);
    }

    [Fact]
    public void Read_overlapping_the_first_write_may_see_nothing_yet()
    {
        var history = new History()
            .Write("c1", "a", 0, 20)
            .Read("c2", null, 5, 15)
            .Read("c3", "a", 6, 16);

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Reading_an_older_value_after_a_newer_write_completed_is_not_linearizable()
    {
        var history = new History()
            .Write("c1", "1", 0, 10)
            .Write("c1", "2", 20, 30)
            .Read("c2", "1", 40, 50);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Contains("NOT linearizable", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("#2 c2 read -> '1'", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("the register holds '2'", result.Explanation, StringComparison.Ordinal);
        Assert.Equal([0L, 1L], result.Linearization.Select(operation => operation.Id));
        Assert.Equal([2L], result.Unplaceable.Select(operation => operation.Id));
    }

    [Fact]
    public void Reading_a_value_never_written_is_not_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Write("c2", "b", 5, 15)
            .Read("c3", "zzz", 3, 30);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Contains(result.Unplaceable, operation => operation.Value == "zzz");
    }

    [Fact]
    public void Reads_that_disagree_on_the_order_of_two_concurrent_writes_are_not_linearizable()
    {
        var history = new History()
            .Write("c1", "x", 0, 10)
            .Write("c2", "y", 0, 10)
            .Read("c3", "x", 20, 30)
            .Read("c3", "y", 40, 50)
            .Read("c3", "x", 60, 70);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Contains(result.Unplaceable, operation => operation.Kind == OperationKind.Read && operation.InvokedAt >= 20);
    }

    [Fact]
    public void Reads_that_agree_on_the_order_of_two_concurrent_writes_are_linearizable()
    {
        var history = new History()
            .Write("c1", "x", 0, 10)
            .Write("c2", "y", 0, 10)
            .Read("c3", "x", 20, 30)
            .Read("c4", "x", 40, 50);

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Concurrent_reads_may_see_a_concurrent_write_in_either_state_but_not_flip_back()
    {
        // r1 sees the new value and completes before r2 starts: r2 cannot see the old value again.
        var history = new History()
            .Write("c1", "old", 0, 5)
            .Write("c1", "new", 10, 100)
            .Read("c2", "new", 20, 30)
            .Read("c3", "old", 40, 50);

        Assert.False(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Read_after_delete_sees_nothing()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Delete("c1", 20, 30)
            .Read("c2", null, 40, 50);

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Reading_the_value_after_the_delete_completed_is_not_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Delete("c1", 20, 30)
            .Read("c2", "a", 40, 50);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Contains("the register holds <none>", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_concurrent_with_a_delete_may_see_the_value_or_nothing()
    {
        foreach (var read in new[] { "a", null })
        {
            var history = new History()
                .Write("c1", "a", 0, 10)
                .Delete("c1", 20, 40)
                .Read("c2", read, 25, 35);

            Assert.True(LinearizabilityChecker.Check(history).IsLinearizable, $"read {read ?? "null"}");
        }
    }

    [Fact]
    public void Timed_out_write_whose_value_is_read_later_is_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .UnknownWrite("c1", "b", 20)
            .Read("c2", "a", 30, 40)
            .Read("c2", "b", 1_000, 1_010);

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Timed_out_write_whose_value_is_never_read_is_linearizable()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .UnknownWrite("c1", "b", 20)
            .Read("c2", "a", 30, 40)
            .Read("c2", "a", 1_000, 1_010);

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.DoesNotContain(result.Linearization, operation => operation.Outcome == OperationOutcome.Unknown);
    }

    [Fact]
    public void Timed_out_write_cannot_take_effect_before_it_was_invoked()
    {
        var history = new History()
            .Read("c2", "b", 0, 10)
            .UnknownWrite("c1", "b", 20);

        Assert.False(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Timed_out_write_takes_effect_at_one_point_only()
    {
        // Once "c" overwrote "b", reading "b" again needs the timed-out write to happen twice.
        var history = new History()
            .UnknownWrite("c1", "b", 0)
            .Read("c2", "b", 10, 20)
            .Write("c3", "c", 30, 40)
            .Read("c2", "b", 50, 60);

        Assert.False(LinearizabilityChecker.Check(history).IsLinearizable);
    }

    [Fact]
    public void Failed_write_never_takes_effect()
    {
        var history = new History()
            .FailedWrite("c1", "b", 0, 10)
            .Read("c2", "b", 20, 30);

        Assert.False(LinearizabilityChecker.Check(history).IsLinearizable);
        Assert.True(LinearizabilityChecker.Check(new History().FailedWrite("c1", "b", 0, 10).Read("c2", null, 20, 30)).IsLinearizable);
    }

    [Fact]
    public void Unknown_read_constrains_nothing()
    {
        var history = new History().Write("c1", "a", 0, 10);
        history.Add(new Operation { Client = "c2", Kind = OperationKind.Read, Value = "zzz", InvokedAt = 20, Outcome = OperationOutcome.Unknown });

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Equal(1, result.OperationCount);
    }

    [Fact]
    public void Compare_and_set_swaps_only_when_the_value_matches()
    {
        var swapped = new History()
            .Write("c1", "a", 0, 10)
            .CompareAndSet("c2", "a", "b", swapped: true, 20, 30)
            .Read("c3", "b", 40, 50);
        var wronglySwapped = new History()
            .Write("c1", "a", 0, 10)
            .CompareAndSet("c2", "x", "b", swapped: true, 20, 30);
        var wronglyRefused = new History()
            .Write("c1", "a", 0, 10)
            .CompareAndSet("c2", "a", "b", swapped: false, 20, 30);
        var refused = new History()
            .Write("c1", "a", 0, 10)
            .CompareAndSet("c2", "x", "b", swapped: false, 20, 30)
            .Read("c3", "a", 40, 50);

        Assert.True(LinearizabilityChecker.Check(swapped).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(wronglySwapped).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(wronglyRefused).IsLinearizable);
        Assert.True(LinearizabilityChecker.Check(refused).IsLinearizable);
    }

    [Fact]
    public void Two_concurrent_compare_and_sets_from_the_same_value_cannot_both_swap()
    {
        var history = new History()
            .Write("c1", "a", 0, 10)
            .CompareAndSet("c2", "a", "b", swapped: true, 20, 30)
            .CompareAndSet("c3", "a", "c", swapped: true, 20, 30);

        var result = LinearizabilityChecker.Check(history);

        Assert.False(result.IsLinearizable);
        Assert.Contains("cas 'a' -> ", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("needs 'a' but the register holds", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Touching_intervals_count_as_concurrent()
    {
        // The read is invoked at the very tick the write responds: the clock cannot order them, so either order is allowed.
        var history = new History()
            .Write("c1", "a", 0, 10)
            .Read("c2", null, 10, 20);

        Assert.True(LinearizabilityChecker.Check(history).IsLinearizable);
        Assert.False(LinearizabilityChecker.Check(new History().Write("c1", "a", 0, 10).Read("c2", null, 11, 20)).IsLinearizable);
    }

    [Fact]
    public void Witness_respects_real_time_and_covers_every_completed_operation()
    {
        var history = RandomRegisterHistory.Generate(seed: 7, clients: 4, operationsPerClient: 25);

        var result = LinearizabilityChecker.Check(history);

        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Equal(history.Count, result.Linearization.Count);
        string? state = null;
        for (var i = 0; i < result.Linearization.Count; i++)
        {
            var operation = result.Linearization[i];
            Assert.True(RegisterModel.Step(state, operation, out state), $"step {i}: {operation}");
            Assert.DoesNotContain(result.Linearization.Skip(i + 1), later => later.RespondedAt < operation.InvokedAt);
        }

        Assert.Equal(state, result.StateAfterLinearization);
    }

    [Fact]
    public void Check_refuses_a_history_of_several_keys()
    {
        var history = new History().Write("c1", "a", 0, 10, key: "k1").Write("c1", "a", 0, 10, key: "k2");

        Assert.Throws<ArgumentException>(() => LinearizabilityChecker.Check(history));
    }

    [Fact]
    public void Check_refuses_a_completed_operation_that_responds_before_its_invocation()
    {
        Assert.Throws<ArgumentException>(() => LinearizabilityChecker.Check(new History().Write("c1", "a", 10, 5)));
    }

    [Fact]
    public void CheckPerKey_checks_each_key_independently()
    {
        var history = new History()
            .Write("c1", "1", 0, 10, key: "good")
            .Write("c1", "1", 0, 10, key: "bad")
            .Write("c2", "2", 20, 30, key: "bad")
            .Read("c3", "1", 40, 50, key: "good")
            .Read("c3", "1", 40, 50, key: "bad");

        var result = LinearizabilityChecker.CheckPerKey(history);

        Assert.False(result.IsLinearizable);
        Assert.True(result.Results["good"].IsLinearizable);
        Assert.Equal("bad", Assert.Single(result.Failures).Key);
        Assert.Contains("key 'bad'", result.Explanation, StringComparison.Ordinal);
        Assert.True(LinearizabilityChecker.CheckPerKey([.. history.Where(operation => operation.Key == "good")]).IsLinearizable);
    }

    [Fact]
    public void Zero_timeout_gives_an_inconclusive_verdict_on_a_hard_history()
    {
        var history = RandomRegisterHistory.Generate(seed: 3, clients: 8, operationsPerClient: 200, valuePool: 2);

        var result = LinearizabilityChecker.Check(history, timeout: TimeSpan.Zero);

        Assert.Equal(LinearizabilityVerdict.Inconclusive, result.Verdict);
        Assert.False(result.IsLinearizable);
    }
}
