using System.Buffers;
using System.Text.Json;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>Frames and message ids (PROTOCOL.md §1, §4) against the vectors' <c>messages</c> and <c>compressed_store_frames</c>.</summary>
public class MessageVectorTests
{
    public static TheoryData<string> MessageNames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in WireVectors.Section("messages").EnumerateObject())
        {
            data.Add(entry.Name);
        }

        return data;
    }

    public static TheoryData<string> CompressedFrameNames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in CompressedSection.GetProperty("frames").EnumerateObject())
        {
            data.Add(entry.Name);
        }

        return data;
    }

    /// <summary>Every method we implement, for the round trips of our own compressor.</summary>
    public static TheoryData<CompressionMethod> Methods() => new(Compression.Supported);

    private static JsonElement CompressedSection => WireVectors.Section("compressed_store_frames");

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Encodes_to_the_exact_reference_frame_and_id(string name)
    {
        var vector = WireVectors.Section("messages").GetProperty(name);

        var message = Build(vector);

        Assert.Equal(WireVectors.Str(vector, "id"), message.Id.ToString());
        Assert.Equal(WireVectors.Str(vector, "frame"), WireVectors.ToHex(FrameCodec.Encode(message)));
    }

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Write_into_a_buffer_writer_matches_encode(string name)
    {
        var message = Build(WireVectors.Section("messages").GetProperty(name));
        var writer = new ArrayBufferWriter<byte>(1); // too small at first: Write must ask for room

        FrameCodec.Write(writer, message);
        FrameCodec.Write(writer, message);

        var frame = FrameCodec.Encode(message);
        Assert.Equal(WireVectors.ToHex([.. frame, .. frame]), WireVectors.ToHex(writer.WrittenSpan));
    }

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Decodes_the_reference_frame(string name)
    {
        var vector = WireVectors.Section("messages").GetProperty(name);
        var frame = WireVectors.Hex(WireVectors.Str(vector, "frame"));
        var methods = vector.GetProperty("compression").EnumerateArray().Select(f => (CompressionMethod)f.GetInt32()).ToList();

        var message = TestFrames.DecodeOne(frame, methods);

        Assert.Equal((MainFlag)vector.GetProperty("msg_type").GetInt32(), message.Type);
        Assert.Equal(WireVectors.Str(vector, "sender"), message.Sender);
        Assert.Equal(vector.GetProperty("time").GetInt64(), message.Time);
        Assert.Equal(WireVectors.Payload(vector.GetProperty("payload")), message.Payload);
        Assert.Equal(WireVectors.Str(vector, "id"), message.Id.ToString());
        Assert.Equal(WireVectors.ToHex(frame.AsSpan(FrameCodec.HeaderLength + FrameCodec.DigestLength)), WireVectors.ToHex(message.Packed.Span));
        Assert.Equal((int)message.Payload[0].AsInt64(), message.SubFlagValue);
    }

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Decoded_reference_message_re_encodes_to_the_same_frame(string name)
    {
        var vector = WireVectors.Section("messages").GetProperty(name);
        var frame = WireVectors.Hex(WireVectors.Str(vector, "frame"));
        var decoded = TestFrames.DecodeOne(frame, Compression.Supported);

        var rebuilt = Message.Create(decoded.Type, decoded.Sender, decoded.Time, decoded.Payload.AsSpan());

        Assert.Equal(WireVectors.ToHex(frame), WireVectors.ToHex(FrameCodec.Encode(rebuilt)));
    }

    [Fact]
    public void Uncompressed_store_frame_decodes_to_the_vector_payload()
    {
        var frame = WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame"));

        var message = TestFrames.DecodeOne(frame, []);

        Assert.Equal(WireVectors.Payload(CompressedSection.GetProperty("payload")), message.Payload);
        Assert.True(message.Is(SubFlag.Store));
    }

    [Theory]
    [MemberData(nameof(CompressedFrameNames))]
    public void Compressed_reference_frame_decodes_with_its_method(string name)
    {
        var vector = CompressedSection.GetProperty("frames").GetProperty(name);
        var method = (CompressionMethod)vector.GetProperty("flag").GetInt32();
        Assert.Equal(name, method.ToString().ToLowerInvariant());
        var expected = TestFrames.DecodeOne(WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame")), []);

        var message = TestFrames.DecodeOne(WireVectors.Hex(WireVectors.Str(vector, "frame")), [method]);

        TestFrames.AssertSame(expected, message);
        Assert.Equal(WireVectors.Payload(CompressedSection.GetProperty("payload")), message.Payload);
    }

    [Theory]
    [MemberData(nameof(CompressedFrameNames))]
    public void Compressed_reference_frame_decodes_when_its_method_is_anywhere_in_the_list(string name)
    {
        var vector = CompressedSection.GetProperty("frames").GetProperty(name);
        var method = (CompressionMethod)vector.GetProperty("flag").GetInt32();
        var frame = WireVectors.Hex(WireVectors.Str(vector, "frame"));
        var expected = TestFrames.DecodeOne(WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame")), []);
        var others = Compression.Supported.Where(m => m != method).ToList();

        TestFrames.AssertSame(expected, TestFrames.DecodeOne(frame, [.. others, method]));
        TestFrames.AssertSame(expected, TestFrames.DecodeOne(frame, [method, .. others]));
    }

    [Theory]
    [MemberData(nameof(CompressedFrameNames))]
    public void Compressed_reference_frame_does_not_decode_without_its_method(string name)
    {
        var vector = CompressedSection.GetProperty("frames").GetProperty(name);
        var method = (CompressionMethod)vector.GetProperty("flag").GetInt32();
        var frame = WireVectors.Hex(WireVectors.Str(vector, "frame"));
        var others = Compression.Supported.Where(m => m != method).ToList();

        Assert.Throws<MsgFormatException>(() => TestFrames.DecodeOne(frame, []));
        Assert.Throws<MsgFormatException>(() => TestFrames.DecodeOne(frame, others));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Our_compressed_store_frame_round_trips(CompressionMethod method)
    {
        var reference = TestFrames.DecodeOne(WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame")), []);
        var message = Message.Create(reference.Type, reference.Sender, reference.Time, reference.Payload.AsSpan());

        var frame = FrameCodec.Encode(message, method);

        Assert.True(frame.Length < FrameCodec.Encode(message).Length, "A repetitive store should compress.");
        TestFrames.AssertSame(reference, TestFrames.DecodeOne(frame, [method]));
        TestFrames.AssertSame(reference, TestFrames.DecodeOne(frame, Compression.Supported));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Our_compressed_body_round_trips_through_decode_body(CompressionMethod method)
    {
        var plain = WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame"))[FrameCodec.HeaderLength..];
        var expected = FrameCodec.DecodeBody(new ReadOnlySequence<byte>(plain), []);

        var compressed = Compression.Compress(method, plain);

        Assert.True(Compression.TryDecompress(method, compressed, FrameCodec.DefaultMaxFrameLength, out var back));
        Assert.Equal(WireVectors.ToHex(plain), WireVectors.ToHex(back));
        TestFrames.AssertSame(expected, FrameCodec.DecodeBody(new ReadOnlySequence<byte>(compressed), [method]));
        TestFrames.AssertSame(expected, FrameCodec.DecodeBody(Segments.OneBytePerSegment(compressed), [method]));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Decompression_refuses_output_beyond_the_limit(CompressionMethod method)
    {
        var plain = WireVectors.Hex(WireVectors.Str(CompressedSection, "uncompressed_frame"))[FrameCodec.HeaderLength..];
        var compressed = Compression.Compress(method, plain);

        Assert.False(Compression.TryDecompress(method, compressed, plain.Length - 1, out _));
        Assert.True(Compression.TryDecompress(method, compressed, plain.Length, out var exact));
        Assert.Equal(plain.Length, exact.Length);
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(compressed), [method], plain.Length - 1));
    }

    [Fact]
    public void Every_supported_method_has_a_reference_frame()
    {
        var flags = CompressedSection.GetProperty("frames").EnumerateObject().Select(f => f.Value.GetProperty("flag").GetInt32()).ToHashSet();
        Assert.All(Compression.Supported, m => Assert.Contains((int)m, flags));
        Assert.All(Compression.Supported, m => Assert.True(Compression.IsSupported((byte)m)));
        Assert.False(Compression.IsSupported(0x12)); // lzma: named by py2p, not implemented here
    }

    private static Message Build(JsonElement vector) => Message.Create(
        (MainFlag)vector.GetProperty("msg_type").GetInt32(),
        WireVectors.Str(vector, "sender"),
        vector.GetProperty("time").GetInt64(),
        WireVectors.Payload(vector.GetProperty("payload")));
}
