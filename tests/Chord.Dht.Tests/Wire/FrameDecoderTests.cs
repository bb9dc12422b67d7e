using System.Buffers;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary><see cref="FrameCodec.TryReadFrame"/> and <see cref="FrameCodec.DecodeBody"/> on partial, joined, oversized and corrupt input.</summary>
public class FrameDecoderTests
{
    public static TheoryData<string> Frames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in WireVectors.Section("messages").EnumerateObject())
        {
            data.Add(WireVectors.Str(entry.Value, "frame"));
        }

        foreach (var entry in WireVectors.Section("compressed_store_frames").GetProperty("frames").EnumerateObject())
        {
            data.Add(WireVectors.Str(entry.Value, "frame"));
        }

        return data;
    }

    [Fact]
    public void Segment_helper_builds_multi_segment_sequences()
    {
        var sequence = Segments.OneBytePerSegment([1, 2, 3]);
        Assert.False(sequence.IsSingleSegment);
        Assert.Equal(3, Segments.ChunksOf(sequence).Count);
        Assert.Equal(new byte[] { 1, 2, 3 }, sequence.ToArray());
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, Segments.Create(Segments.SplitAt([1, 2, 3, 4], [3, 0, 1, 1])).ToArray());
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void Frame_fed_one_byte_at_a_time_needs_more_until_its_last_byte(string hex)
    {
        var frame = WireVectors.Hex(hex);
        var expected = TestFrames.DecodeOne(frame, Compression.Supported);

        for (var received = 0; received < frame.Length; received++)
        {
            var buffer = Segments.OneBytePerSegment(frame[..received]);
            var status = FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out _, out var declared);

            Assert.Equal(FrameReadStatus.NeedMore, status);
            Assert.Equal(received, buffer.Length); // nothing consumed
            Assert.Equal(received < FrameCodec.HeaderLength ? -1 : frame.Length - FrameCodec.HeaderLength, declared);
        }

        var whole = Segments.OneBytePerSegment(frame);
        Assert.False(whole.IsSingleSegment);
        Assert.Equal(FrameReadStatus.Frame, FrameCodec.TryReadFrame(ref whole, FrameCodec.DefaultMaxFrameLength, out var body, out _));
        Assert.True(whole.IsEmpty);
        Assert.False(body.IsSingleSegment);
        TestFrames.AssertSame(expected, FrameCodec.DecodeBody(body, Compression.Supported));
    }

    [Fact]
    public void Several_frames_in_one_buffer_all_decode_in_order()
    {
        var frames = WireVectors.Section("messages").EnumerateObject().Select(e => WireVectors.Hex(WireVectors.Str(e.Value, "frame"))).ToList();
        var ids = WireVectors.Section("messages").EnumerateObject().Select(e => WireVectors.Str(e.Value, "id")).ToList();
        var all = frames.SelectMany(f => f).ToArray();

        foreach (var buffer in new[] { new ReadOnlySequence<byte>(all), Segments.Create(Segments.SplitAt(all, Enumerable.Range(1, all.Length / 7).Select(i => i * 7))) })
        {
            var remaining = buffer;
            var messages = new List<Message>();

            var status = TestFrames.ReadAll(ref remaining, [], messages);

            Assert.Equal(FrameReadStatus.NeedMore, status);
            Assert.True(remaining.IsEmpty);
            Assert.Equal(ids, messages.Select(m => m.Id.ToString()).ToList());
        }
    }

    [Fact]
    public void Frame_followed_by_part_of_the_next_leaves_the_part_in_the_buffer()
    {
        var first = WireVectors.Hex(WireVectors.Str(WireVectors.Section("messages").GetProperty("store"), "frame"));
        var second = WireVectors.Hex(WireVectors.Str(WireVectors.Section("messages").GetProperty("peers"), "frame"));
        var buffer = Segments.Create(first, second[..10]);
        var messages = new List<Message>();

        Assert.Equal(FrameReadStatus.NeedMore, TestFrames.ReadAll(ref buffer, [], messages));

        Assert.Single(messages);
        Assert.Equal(WireVectors.ToHex(second.AsSpan(0, 10)), WireVectors.ToHex(buffer.ToArray()));
        buffer = Segments.Create([.. Segments.ChunksOf(buffer), second.AsMemory(10)]);
        Assert.Equal(FrameReadStatus.NeedMore, TestFrames.ReadAll(ref buffer, [], messages));
        Assert.Equal(2, messages.Count);
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Partial_header_needs_more(int length)
    {
        var buffer = Segments.OneBytePerSegment(TestFrames.Header(uint.MaxValue)[..length]);

        var status = FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out _, out var declared);

        Assert.Equal(FrameReadStatus.NeedMore, status);
        Assert.Equal(-1, declared);
        Assert.Equal(length, buffer.Length);
    }

    [Theory]
    [InlineData(FrameCodec.DefaultMaxFrameLength, FrameCodec.DefaultMaxFrameLength + 1u)]
    [InlineData(FrameCodec.DefaultMaxFrameLength, uint.MaxValue)]
    [InlineData(FrameCodec.DefaultMaxFrameLength, 0x80000000u)]
    [InlineData(100, 101u)]
    [InlineData(0, 1u)]
    public void Header_announcing_more_than_the_maximum_is_too_long_from_the_header_alone(int max, uint announced)
    {
        var buffer = new ReadOnlySequence<byte>(TestFrames.Header(announced));

        var status = FrameCodec.TryReadFrame(ref buffer, max, out _, out var declared);

        Assert.Equal(FrameReadStatus.TooLong, status);
        Assert.Equal(announced, declared);
        Assert.Equal(FrameCodec.HeaderLength, buffer.Length);
    }

    [Fact]
    public void Header_announcing_exactly_the_maximum_needs_more()
    {
        var buffer = new ReadOnlySequence<byte>(TestFrames.Header(FrameCodec.DefaultMaxFrameLength));

        var status = FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out _, out var declared);

        Assert.Equal(FrameReadStatus.NeedMore, status);
        Assert.Equal(FrameCodec.DefaultMaxFrameLength, declared);
    }

    [Fact]
    public void Frame_at_a_small_maximum_is_read_and_one_byte_over_is_too_long()
    {
        var frame = WireVectors.Hex(WireVectors.Str(WireVectors.Section("messages").GetProperty("store"), "frame"));
        var bodyLength = frame.Length - FrameCodec.HeaderLength;

        var atMax = new ReadOnlySequence<byte>(frame);
        Assert.Equal(FrameReadStatus.Frame, FrameCodec.TryReadFrame(ref atMax, bodyLength, out _, out _));
        var overMax = new ReadOnlySequence<byte>(frame);
        Assert.Equal(FrameReadStatus.TooLong, FrameCodec.TryReadFrame(ref overMax, bodyLength - 1, out _, out _));
    }

    [Fact]
    public void Empty_frame_is_read_and_its_body_is_a_format_error()
    {
        var buffer = new ReadOnlySequence<byte>(TestFrames.Header(0));

        Assert.Equal(FrameReadStatus.Frame, FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out var declared));
        Assert.Equal(0, declared);
        Assert.True(body.IsEmpty);
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(body, Compression.Supported));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(32)]
    public void Body_no_longer_than_a_digest_is_a_format_error(int length)
    {
        var body = new ReadOnlySequence<byte>(new byte[length]);
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(body, Compression.Supported));
    }

    [Fact]
    public void Flipping_any_bit_of_an_uncompressed_body_is_a_format_error()
    {
        var frame = WireVectors.Hex(WireVectors.Str(WireVectors.Section("messages").GetProperty("store"), "frame"));
        var body = frame[FrameCodec.HeaderLength..];

        for (var bit = 0; bit < body.Length * 8; bit++)
        {
            var corrupt = (byte[])body.Clone();
            corrupt[bit / 8] ^= (byte)(1 << (bit % 8));

            var plain = Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(corrupt), []));
            Assert.Contains("digest", plain.Message, StringComparison.Ordinal);
            Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(corrupt), Compression.Supported));
        }
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void Flipping_a_bit_of_a_frame_never_yields_a_different_message(string hex)
    {
        var frame = WireVectors.Hex(hex);
        var expected = TestFrames.DecodeOne(frame, Compression.Supported);
        var body = frame[FrameCodec.HeaderLength..];

        for (var i = 0; i < body.Length; i++)
        {
            var corrupt = (byte[])body.Clone();
            corrupt[i] ^= (byte)(1 << (i % 8)); // every byte, each bit position in turn
            Message decoded;
            try
            {
                decoded = FrameCodec.DecodeBody(new ReadOnlySequence<byte>(corrupt), Compression.Supported);
            }
            catch (MsgFormatException)
            {
                continue; // the expected outcome: the digest (or the decompressor) rejects it
            }

            // Some container bytes (a gzip header's mtime, say) do not reach the decompressed content.
            TestFrames.AssertSame(expected, decoded);
        }
    }
}
