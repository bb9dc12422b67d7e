using System.Collections.Concurrent;
using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Ring;

/// <summary>Writers racing on one key from different nodes.</summary>
/// <remarks>
/// py2p's ring has no versions: each of the five owners keeps the last store it received, so while writers race
/// the positions may hold different writers' values, and a read can find no value with 3 votes
/// (<see cref="ChordNoMajorityException"/>). Such reads are counted, not failed; but a read that returns a value must
/// return one that was written, and the reads must not all be refusals. Once the writers stop (every write was
/// acknowledged by all five owners), the owners' tables no longer change, so every node must read the same outcome.
/// </remarks>
public class RingConcurrencyTests(ITestOutputHelper output)
{
    private const int WritesPerWriter = 40;

    [Fact]
    public async Task Racing_writers_on_one_key_are_read_as_one_written_value_and_every_node_agrees_afterwards()
    {
        await using var ring = await RingTestCluster.StartAsync(3);
        var writers = ring.Nodes;
        var written = new HashSet<MsgValue> { "initial" };
        for (var w = 0; w < writers.Count; w++)
        {
            for (var i = 0; i < WritesPerWriter; i++)
            {
                written.Add($"writer{w}-{i}");
            }
        }

        await ring.Nodes[0].SetAsync("contended", "initial");
        using var stop = new CancellationTokenSource();
        var values = 0;
        var noMajority = 0;
        var wrong = new ConcurrentQueue<string>();

        async Task ReadUntilStoppedAsync(RingNode reader)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var value = await reader.GetAsync("contended");
                    Interlocked.Increment(ref values);
                    if (!written.Contains(value))
                    {
                        wrong.Enqueue(value.ToString());
                    }
                }
                catch (ChordNoMajorityException)
                {
                    Interlocked.Increment(ref noMajority);
                }
            }
        }

        var readers = ring.Nodes.Select(n => Task.Run(() => ReadUntilStoppedAsync(n))).ToList();
        await Task.WhenAll(writers.Select((node, w) => Task.Run(async () =>
        {
            for (var i = 0; i < WritesPerWriter; i++)
            {
                try
                {
                    await node.SetAsync("contended", $"writer{w}-{i}");
                }
                catch (ChordWriteException e) when (e.Message.Contains("may or may not", StringComparison.Ordinal))
                {
                    // A duel the register cannot settle for this writer: its value may or may not be the key's now.
                }
            }
        })));
        await stop.CancelAsync();
        await Task.WhenAll(readers);

        output.WriteLine($"reads during the race: {values} returned a value, {noMajority} found no majority");
        Assert.True(wrong.IsEmpty, $"reads returned values nobody wrote: {string.Join(", ", wrong.Take(5))}");
        Assert.True(values > 0, $"all {noMajority} reads during the race found no majority");

        // After the race: every node reads the same outcome, at once.
        var outcomes = new List<string>();
        foreach (var node in ring.Nodes)
        {
            try
            {
                var value = await node.GetAsync("contended");
                Assert.Contains(value, written);
                outcomes.Add(value.AsString());
            }
            catch (ChordNoMajorityException e)
            {
                outcomes.Add($"no majority ({e.Answers} answers)");
            }
        }

        output.WriteLine($"after the race: {string.Join(" | ", outcomes)}");
        Assert.True(outcomes.Distinct().Count() == 1, $"the nodes disagree after the writers stopped: {string.Join(" | ", outcomes)}");
    }
}
