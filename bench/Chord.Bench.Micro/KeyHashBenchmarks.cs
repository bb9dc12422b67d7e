using BenchmarkDotNet.Attributes;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary><see cref="KeyHashes.All"/>: the five ring positions of a 16-byte key.</summary>
[MemoryDiagnoser]
public class KeyHashesAllBenchmarks
{
    private readonly byte[] _key = TestData.TextLikeBytes(16, seed: 7);

    [Benchmark]
    public RingPosition[] All() => KeyHashes.All(_key);
}

/// <summary><see cref="KeyHashes.Position"/> of a 16-byte key under each method alone.</summary>
[MemoryDiagnoser]
public class KeyHashesPositionBenchmarks
{
    private readonly byte[] _key = TestData.TextLikeBytes(16, seed: 7);

    [ParamsAllValues]
    public HashMethod Hash { get; set; }

    [Benchmark]
    public RingPosition Position() => KeyHashes.Position(Hash, _key);
}
