using System.Buffers;
using BenchmarkDotNet.Attributes;
using Chord.Dht.Wire;

namespace Chord.Bench.Micro;

/// <summary>How a frame body is compressed in <see cref="FrameBenchmarks"/>.</summary>
public enum FrameCompression
{
    None,
    Snappy,
    Zlib,
}

/// <summary>
/// <see cref="FrameCodec.Encode"/> and <see cref="FrameCodec.TryReadFrame"/> + <see cref="FrameCodec.DecodeBody"/>
/// of a whispered store request <c>[11, bin "sha1", bin position, value]</c> whose value is a bin.
/// </summary>
/// <remarks>
/// Decoding passes <see cref="Compression.Supported"/> (snappy, zlib, gzip, bz2) as the agreed methods, as with a
/// peer that agreed them all: the raw body is tried first, then each method in that order until a digest matches.
/// </remarks>
[MemoryDiagnoser]
[ExceptionDiagnoser]
public class FrameBenchmarks
{
    private Message _message = null!;
    private byte[] _frame = [];

    [Params(64, 4096)]
    public int ValueBytes { get; set; }

    [Params(FrameCompression.None, FrameCompression.Snappy, FrameCompression.Zlib)]
    public FrameCompression Compression { get; set; }

    private CompressionMethod? Method => Compression switch
    {
        FrameCompression.Snappy => CompressionMethod.Snappy,
        FrameCompression.Zlib => CompressionMethod.Zlib,
        _ => null,
    };

    [GlobalSetup]
    public void Setup()
    {
        var value = MsgValue.Bin(TestData.TextLikeBytes(ValueBytes));
        _message = Message.Create(MainFlag.Whisper, TestData.SenderId, TestData.Time, TestData.StorePayload(value));
        _frame = FrameCodec.Encode(_message, Method);

        // Check once that the frame reads back, so a broken codec fails the run instead of timing an exception.
        var decoded = ReadFrame();
        if (decoded.Id != _message.Id)
        {
            throw new InvalidOperationException("The frame did not decode to the message it was made from.");
        }
    }

    [Benchmark]
    public byte[] Encode() => FrameCodec.Encode(_message, Method);

    [Benchmark]
    public Message Decode() => ReadFrame();

    private Message ReadFrame()
    {
        var buffer = new ReadOnlySequence<byte>(_frame);
        if (FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out _) != FrameReadStatus.Frame)
        {
            throw new InvalidOperationException("The frame was not read whole.");
        }

        return FrameCodec.DecodeBody(body, Chord.Dht.Wire.Compression.Supported);
    }
}

/// <summary><see cref="Message.Create"/>: packing the store request with msgpack and its SHA-256 id.</summary>
[MemoryDiagnoser]
public class MessageCreateBenchmarks
{
    private MsgValue[] _payload = [];

    [Params(64, 4096)]
    public int ValueBytes { get; set; }

    [GlobalSetup]
    public void Setup() => _payload = TestData.StorePayload(MsgValue.Bin(TestData.TextLikeBytes(ValueBytes)));

    [Benchmark]
    public Message Create() => Message.Create(MainFlag.Whisper, TestData.SenderId, TestData.Time, _payload);
}
