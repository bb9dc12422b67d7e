using Chord.Dht.Ring;
using Chord.Dht.Tests.Linearizability;
using Chord.Dht.Tests.Ring;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Durability;

/// <summary>Several nodes write and read one key at once; the recorded history must be linearizable.</summary>
public class LinearizabilityRingTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(5, 4, 60)]
    [InlineData(7, 6, 40)]
    public async Task Concurrent_writes_and_reads_of_one_key_are_linearizable(int nodes, int clients, int operationsPerClient)
    {
        await using var cluster = await RingTestCluster.StartAsync(nodes);
        var recorder = new HistoryRecorder();
        const string key = "contended";

        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var node = cluster.Nodes[c % cluster.Nodes.Count];
            var random = new Random(c);
            for (var i = 0; i < operationsPerClient; i++)
            {
                var client = $"client-{c}";
                if (random.Next(2) == 0)
                {
                    var value = $"{client}-{i}";
                    var write = recorder.Invoke(client, OperationKind.Write, value);
                    try
                    {
                        await node.SetAsync(key, value);
                        recorder.Ok(write);
                    }
                    catch (Exception e) when (e is ChordWriteException or ChordTimeoutException)
                    {
                        recorder.Unknown(write); // may or may not have taken effect
                    }
                }
                else
                {
                    var read = recorder.Invoke(client, OperationKind.Read);
                    try
                    {
                        var value = await node.GetAsync(key);
                        recorder.Ok(read, value.AsString());
                    }
                    catch (ChordKeyNotFoundException)
                    {
                        recorder.Ok(read, null);
                    }
                    catch (Exception e) when (e is ChordTimeoutException or ChordNoMajorityException)
                    {
                        recorder.Fail(read); // a read that returned nothing constrains nothing
                    }
                }
            }
        })));

        var history = recorder.ToHistory();
        var result = LinearizabilityChecker.Check(history);
        output.WriteLine($"{history.Count} operations from {clients} clients on {nodes} nodes: {result.Verdict} ({result.StatesExplored} states, {result.Elapsed.TotalMilliseconds:0} ms)");
        Assert.True(result.IsLinearizable, result.Explanation);
        Assert.Contains(history, o => o.Kind == OperationKind.Read && o.Outcome == OperationOutcome.Ok);
    }
}
