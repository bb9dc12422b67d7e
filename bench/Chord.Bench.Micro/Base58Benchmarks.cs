using System.Numerics;
using System.Text;
using BenchmarkDotNet.Attributes;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary>
/// <see cref="Base58.Encode"/> and <see cref="Base58.Decode(ReadOnlySpan{char})"/> of a 384-bit integer (a node
/// id or a reduced position) and a 512-bit one (a sha512 position); DecodeAscii is the overload bins arrive in.
/// </summary>
[MemoryDiagnoser]
public class Base58Benchmarks
{
    private BigInteger _value;
    private string _text = "";
    private byte[] _ascii = [];

    [Params(384, 512)]
    public int Bits { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _value = TestData.IntegerOfBits(Bits);
        _text = Base58.Encode(_value);
        _ascii = Encoding.ASCII.GetBytes(_text);
        if (Base58.Decode(_text) != _value)
        {
            throw new InvalidOperationException("base58 did not round-trip.");
        }
    }

    [Benchmark]
    public string Encode() => Base58.Encode(_value);

    [Benchmark]
    public BigInteger Decode() => Base58.Decode(_text);

    [Benchmark]
    public BigInteger DecodeAscii() => Base58.Decode(_ascii);
}
