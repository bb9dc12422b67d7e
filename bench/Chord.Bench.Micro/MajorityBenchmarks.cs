using BenchmarkDotNet.Attributes;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary>
/// The read's majority vote over five answers: three equal maps (separate instances, as five deserialized
/// answers are), one different map and one nil. <see cref="Vote"/> is the grouping RingNode's private
/// <c>Decide</c> does, written here with the public <see cref="RetrieveResult"/> and <see cref="MsgValue"/>
/// equality; the other two time the equality pieces it is made of.
/// </summary>
[MemoryDiagnoser]
public class MajorityBenchmarks
{
    private RetrieveResult[] _answers = [];
    private MsgValue _left = MsgValue.Nil;
    private MsgValue _right = MsgValue.Nil;

    [GlobalSetup]
    public void Setup()
    {
        var key = "bench-key"u8.ToArray();
        MsgValue[] values =
        [
            TestData.SmallMap(),
            TestData.SmallMap(),
            TestData.SmallMap(name: "bob"),
            TestData.SmallMap(),
            MsgValue.Nil,
        ];
        _answers = KeyHashes.Methods
            .Select((method, i) => new RetrieveResult(method, KeyHashes.Position(method, key), values[i], Hops: 1))
            .ToArray();
        _left = values[0];
        _right = values[1];

        var (winner, count) = Vote();
        if (count != 3 || !winner.Equals(_left))
        {
            throw new InvalidOperationException($"The vote chose {winner} with {count} answers; expected the map with 3.");
        }
    }

    /// <summary>As in RingNode.Decide: group by value, count, take the largest group.</summary>
    [Benchmark]
    public (MsgValue Value, int Count) Vote() =>
        _answers.GroupBy(a => a.Value).Select(g => (Value: g.Key, Count: g.Count())).OrderByDescending(g => g.Count).FirstOrDefault();

    [Benchmark]
    public bool MapEquals() => _left.Equals(_right);

    [Benchmark]
    public int MapHashCode() => _left.GetHashCode();
}
