using BenchmarkDotNet.Attributes;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary>The values of <see cref="MsgPackBenchmarks"/>.</summary>
public enum MsgShape
{
    /// <summary>A five-entry dict with str keys (str, int, bool, float, a 2-item array).</summary>
    SmallMap,
    /// <summary>A 4 KiB bin.</summary>
    Bin4K,
    /// <summary>An array nested four deep with ints, strs, a 16-byte bin, a map and a 16-int array.</summary>
    NestedArray,
}

/// <summary><see cref="MsgPack.Serialize"/> and <see cref="MsgPack.Deserialize"/> of one value.</summary>
[MemoryDiagnoser]
public class MsgPackBenchmarks
{
    private MsgValue _value = MsgValue.Nil;
    private byte[] _packed = [];

    [Params(MsgShape.SmallMap, MsgShape.Bin4K, MsgShape.NestedArray)]
    public MsgShape Shape { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _value = Shape switch
        {
            MsgShape.SmallMap => TestData.SmallMap(),
            MsgShape.Bin4K => MsgValue.Bin(TestData.TextLikeBytes(4096)),
            _ => TestData.NestedArray(),
        };
        _packed = MsgPack.Serialize(_value);
        if (!MsgPack.Deserialize(_packed).Equals(_value))
        {
            throw new InvalidOperationException($"{Shape} did not round-trip.");
        }
    }

    [Benchmark]
    public byte[] Serialize() => MsgPack.Serialize(_value);

    [Benchmark]
    public MsgValue Deserialize() => MsgPack.Deserialize(_packed);
}
