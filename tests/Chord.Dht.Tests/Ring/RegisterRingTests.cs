using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Tests.Durability;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The per-key consensus register on a real ring (issue 12): updates from any node are atomic, the node that wrote a
/// key last writes it again in one round, and an owner that stops answering stalls no key it holds at most two
/// positions of.
/// </summary>
[Collection(FaultScenarioCollection.Name)]
public sealed class RegisterRingTests
{
    private static RegisterChange Increment(VersionedValue current) =>
        RegisterChange.To(current.Value.IsNil ? 1L : current.Value.AsInt64() + 1);

    [Fact]
    public async Task Concurrent_increments_from_every_node_lose_no_update_and_commit_each_count_once()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true);
        const int perNode = 15;
        var committed = new System.Collections.Concurrent.ConcurrentBag<long>();
        var uncertain = 0;
        await Task.WhenAll(ring.Nodes.Select(node => Task.Run(async () =>
        {
            for (var i = 0; i < perNode; i++)
            {
                try
                {
                    var outcome = await node.UpdateAsync("counter", Increment);
                    Assert.True(outcome.Written);
                    Assert.Equal(outcome.Previous.Value.IsNil ? 1 : outcome.Previous.Value.AsInt64() + 1, outcome.Current.Value.AsInt64());
                    committed.Add(outcome.Current.Value.AsInt64());
                }
                catch (ChordWriteException e) when (e.Message.Contains("may", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref uncertain); // the update may or may not have been applied: both are allowed
                }
            }
        })));

        // Each committed increment saw a different count (no two decided on the same value), and none was lost.
        Assert.Equal(committed.Count, committed.Distinct().Count());
        var final = (await ring.Nodes[0].GetAsync("counter")).AsInt64();
        Assert.InRange(final, committed.Count, committed.Count + uncertain);
        Assert.True(committed.Max() <= final, $"a committed count {committed.Max()} is above the final {final}");
        foreach (var node in ring.Nodes)
        {
            Assert.Equal(final, (await node.GetAsync("counter")).AsInt64());
        }
    }

    [Fact]
    public async Task The_node_that_wrote_a_key_last_writes_it_again_in_one_round_until_another_node_writes_it()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true);
        var (writer, other) = (ring.Nodes[1], ring.Nodes[3]);
        var first = await writer.UpdateAsync("sticky", _ => RegisterChange.To("v0"));
        Assert.Equal(2, first.Rounds); // prepare + accept: nobody promised this node anything yet

        var oneRoundBefore = writer.RegisterOneRoundWrites;
        for (var i = 1; i <= 10; i++)
        {
            var outcome = await writer.UpdateAsync("sticky", _ => RegisterChange.To($"v{i}"));
            Assert.Equal(1, outcome.Rounds);
            Assert.True(outcome.Current.Version > outcome.Previous.Version);
        }

        Assert.Equal(oneRoundBefore + 10, writer.RegisterOneRoundWrites);

        // Another node's write takes the promise: the first node's next write finds it refused, prepares again and
        // still decides on the other node's value (no lost update), then is back to one round.
        await other.SetAsync("sticky", "from-other");
        var after = await writer.UpdateAsync("sticky", current => RegisterChange.To(current.Value.AsString() + "+writer"));
        Assert.True(after.Rounds > 1);
        Assert.Equal("from-other+writer", after.Current.Value.AsString());
        Assert.Equal(1, (await writer.UpdateAsync("sticky", _ => RegisterChange.To("last"))).Rounds);
        Assert.Equal("last", (await other.GetAsync("sticky")).AsString());
    }

    [Fact]
    public async Task Compare_and_set_from_every_node_with_the_same_expectation_lets_exactly_one_write()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true);
        var start = await ring.Nodes[0].CompareAndSetAsync("cas", EntryVersion.Zero, "start");
        Assert.True(start.Succeeded);

        // Duelling proposers: a loser whose accept reached some positions before it lost cannot tell whether its value
        // was committed and then replaced, and says so ("may or may not"); every other answer is definite.
        var results = await Task.WhenAll(ring.Nodes.Select((node, i) => Task.Run(async () =>
        {
            try
            {
                return (CompareAndSetResult?)await node.CompareAndSetAsync("cas", start.Current.Version, MsgValue.Str($"winner-{i}"));
            }
            catch (ChordWriteException e) when (e.Message.Contains("may or may not", StringComparison.Ordinal))
            {
                return null;
            }
        })));

        var definite = results.Where(r => r is not null).Select(r => r!).ToList();
        var winners = definite.Where(r => r.Succeeded).ToList();
        Assert.True(winners.Count <= 1, $"{winners.Count} compare-and-sets with the same expectation succeeded");
        var final = await ring.Nodes[4].GetVersionedAsync("cas");
        Assert.StartsWith("winner-", final.Value.AsString(), StringComparison.Ordinal);
        if (winners.Count == 1)
        {
            Assert.Equal(winners[0].Current, final);
        }
        else
        {
            Assert.Contains(results, r => r is null); // the value that won was written by an uncertain one
        }

        // Every definite loser saw the winner's value: its compare was against the committed state.
        Assert.All(definite.Where(r => !r.Succeeded), r => Assert.Equal(final, r.Current));
    }

    [Fact]
    public async Task A_delete_is_an_update_and_a_read_of_an_unwritten_key_commits_nothing()
    {
        await using var ring = await RingTestCluster.StartAsync(3, inMemory: true);
        var never = await ring.Nodes[0].GetVersionedAsync("never-written");
        Assert.True(never.Value.IsNil);
        Assert.Equal(EntryVersion.Zero, never.Version);

        await ring.Nodes[0].SetAsync("doomed", "value");
        Assert.Equal("value", (await ring.Nodes[1].PopAsync("doomed")).AsString());
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[2].GetAsync("doomed"));
        await Assert.ThrowsAsync<ChordKeyNotFoundException>(() => ring.Nodes[2].PopAsync("doomed"));

        // The tombstone has a version above the value's, so the key's ETag moved on.
        var tombstone = await ring.Nodes[0].GetVersionedAsync("doomed");
        Assert.True(tombstone.Value.IsNil);
        Assert.True(tombstone.Version > EntryVersion.Zero);
    }

    [Fact]
    public async Task A_frozen_owner_stalls_no_key_it_holds_at_most_two_positions_of_and_catches_up_when_it_thaws()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true, configure: o => o.RequestTimeout = TimeSpan.FromSeconds(30), freezable: true);
        var frozen = ring.Nodes[2];
        var ids = ring.Nodes.Select(n => n.Id).ToList();
        var keys = Enumerable.Range(0, 10_000).Select(i => $"frozen-{i}")
            .Where(k => RingTestData.PositionsOwnedBy(ids, k, frozen.Id) is 1 or 2).Take(20).ToList();
        foreach (var key in keys)
        {
            await ring.Nodes[0].SetAsync(key, "before");
        }

        ring.FreezableOf(frozen).Freeze();
        try
        {
            // Every other node writes and reads every key while the owner is frozen: three positions answer.
            var healthy = ring.Nodes.Where(n => n != frozen).ToList();
            foreach (var (node, i) in healthy.Select((n, i) => (n, i)))
            {
                foreach (var key in keys)
                {
                    await node.SetAsync(key, $"during-{i}");
                    Assert.Equal($"during-{i}", (await healthy[(i + 1) % healthy.Count].GetAsync(key)).AsString());
                }
            }
        }
        finally
        {
            ring.FreezableOf(frozen).Thaw();
        }

        // Thawed, it answers again; its reads see the writes it missed (a quorum of the others holds them). While it
        // was frozen the others could not dial it and may have taken it for gone; it announces itself again when it
        // hears so, and the ring converges first (a clean-clone CI run read at once and got 2 of 5 answers in 30 s).
        await ring.WaitUntilConvergedAsync(TimeSpan.FromSeconds(60));
        // Its own requests went unanswered while it was frozen, so it may hold the others suspect until they answer it
        // again: an inspection asks all five positions, so each round probes every owner.
        await Eventually.UntilAsync(async () =>
        {
            await frozen.InspectAsync(keys[0]);
            return frozen.SuspectMembers.Count == 0;
        }, TimeSpan.FromSeconds(60), "the thawed node to clear its suspicion of the others once they answer it");
        foreach (var key in keys)
        {
            Assert.Equal("during-3", (await frozen.GetAsync(key)).AsString());
        }
    }

    [Fact]
    public async Task A_key_that_three_owners_never_answer_for_fails_with_a_clear_write_error_and_no_stall_beyond_the_deadline()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true, configure: o => o.RequestTimeout = TimeSpan.FromSeconds(2));
        var key = RingTestKeys.WithOwnersSpread(ring, minimumOwners: 3);
        await ring.Nodes[0].SetAsync(key, "old");
        var owners = KeyHashes.All(RingNode.KeyBytes(key)).Select(p => ring.Nodes[0].Find(p)!.Id).ToList();
        var writer = ring.Nodes.First(n => owners.Count(o => o == n.Id) <= 1);
        var cut = new List<RingNode>();
        foreach (var node in ring.Nodes.Where(n => n != writer).OrderByDescending(n => owners.Count(o => o == n.Id)))
        {
            if (owners.Count(o => cut.Any(c => c.Id == o)) < 3)
            {
                cut.Add(node);
            }
        }

        Assert.True(owners.Count(o => cut.Any(c => c.Id == o)) >= 3, "three of the key's positions are on the cut nodes");
        foreach (var node in cut)
        {
            node.IgnoreWritesForTest = true;
        }

        var failure = await Assert.ThrowsAsync<ChordWriteException>(() => writer.SetAsync(key, "new"));
        Assert.True(failure.Acknowledged < 3);
        Assert.Contains($"acknowledged by {failure.Acknowledged} of 5 positions", failure.Message, StringComparison.Ordinal);
        foreach (var node in cut)
        {
            node.IgnoreWritesForTest = false;
        }

        Assert.Contains((await writer.GetAsync(key)).AsString(), new[] { "old", "new" });
    }

    [Fact]
    public async Task A_write_whose_accept_is_still_unanswered_when_its_deadline_ends_says_it_may_still_take_effect()
    {
        await using var ring = await RingTestCluster.StartAsync(3, inMemory: true, configure: o =>
        {
            o.RequestTimeout = TimeSpan.FromSeconds(2);
            o.KeepPlacementCopies = false;
        });

        // A key the writer owns no position of, written once: the writer's next write of it is one accept.
        var (writer, key) = ring.NodeOwningNoPositionOf("unanswered");
        var owners = ring.Nodes.Where(n => n != writer).ToList();
        await writer.SetAsync(key, "old");

        // The owners take requests and never answer (an owner may have applied one whose answer was lost): the writer
        // cannot know whether its accept landed, so it must not say it did not.
        foreach (var node in owners)
        {
            node.IgnoreWritesForTest = true;
        }

        var failure = await Assert.ThrowsAsync<ChordWriteException>(() => writer.SetAsync(key, "new"));
        Assert.True(failure.Message.Contains("It may still take effect", StringComparison.Ordinal), failure.Message);
        foreach (var node in owners)
        {
            node.IgnoreWritesForTest = false;
        }
    }

    [Fact]
    public async Task A_member_that_stops_answering_is_suspected_routed_around_and_cleared_when_it_answers_again()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true, configure: o =>
        {
            o.RequestTimeout = TimeSpan.FromSeconds(20);
            o.SuspectAfter = TimeSpan.FromSeconds(1);
        }, freezable: true);
        var (frozen, observer) = (ring.Nodes[1], ring.Nodes[4]);
        var ids = ring.Nodes.Select(n => n.Id).ToList();
        var keys = Enumerable.Range(0, 10_000).Select(i => $"suspect-{i}")
            .Where(k => RingTestData.PositionsOwnedBy(ids, k, frozen.Id) is 1 or 2).Take(10).ToList();
        foreach (var key in keys)
        {
            await observer.SetAsync(key, "v");
        }

        Assert.Empty(observer.SuspectMembers);
        ring.FreezableOf(frozen).Freeze();
        try
        {
            // Reads keep working (three other positions answer); the frozen member's silence makes it suspect.
            await Eventually.UntilAsync(async () =>
            {
                foreach (var key in keys)
                {
                    Assert.Equal("v", (await observer.GetAsync(key)).AsString());
                }

                return observer.IsSuspect(frozen.Id);
            }, TimeSpan.FromSeconds(30), "the observer to suspect the frozen member");
            Assert.Equal([frozen.Id], observer.SuspectMembers);

            // While suspect, its positions are not waited for: every key stays writable and readable.
            foreach (var key in keys)
            {
                await observer.SetAsync(key, "while-suspect");
                Assert.Equal("while-suspect", (await observer.GetAsync(key)).AsString());
            }
        }
        finally
        {
            ring.FreezableOf(frozen).Thaw();
        }

        // Thawed, it answers what waited (the requests sent to it as probes), which clears the mark. An inspection asks
        // all five positions, so every round sends it a probe of its own: a read decides on its first three answers and
        // need not ask it at all, and if the probes sent while it was frozen go unanswered (a connection lost with them)
        // nothing else would (this wait timed out once in a clean-clone CI run under load; cause not pinned down).
        await Eventually.UntilAsync(async () =>
        {
            await observer.InspectAsync(keys[0]);
            return !observer.IsSuspect(frozen.Id);
        }, TimeSpan.FromSeconds(30), "the observer to clear its suspicion once the member answers");
        Assert.Empty(observer.SuspectMembers);
    }
}
