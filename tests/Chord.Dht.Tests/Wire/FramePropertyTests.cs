using System.Buffers;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>Random messages through frames: every compression, concatenated streams cut anywhere, corrupt input.</summary>
public class FramePropertyTests
{
    private static readonly Gen<(Message Message, CompressionMethod? Method)[]> Stream =
        Gen.Select(WireGen.Message, WireGen.Method).Array[1, 8];

    [Fact]
    public void Random_messages_round_trip_through_a_frame_with_each_compression()
    {
        Gen.Select(WireGen.Message, WireGen.Method).Sample((message, method) =>
        {
            var frame = FrameCodec.Encode(message, method);

            TestFrames.AssertSame(message, TestFrames.DecodeOne(frame, Compression.Supported));
            TestFrames.AssertSame(message, TestFrames.DecodeOne(frame, method is { } m ? [m] : []));
            Assert.Equal(message.Id, MessageId.FromDigest(System.Security.Cryptography.SHA256.HashData(message.Packed.Span)));
        }, iter: 400);
    }

    [Fact]
    public void Random_message_re_created_from_its_fields_has_the_same_bytes_and_id()
    {
        WireGen.Message.Sample(message =>
        {
            var again = Message.Create(message.Type, message.Sender, message.Time, message.Payload.AsSpan());
            TestFrames.AssertSame(message, again);
            Assert.Equal(WireVectors.ToHex(FrameCodec.Encode(message)), WireVectors.ToHex(FrameCodec.Encode(again)));
        }, iter: 500);
    }

    [Fact]
    public void Concatenated_frames_cut_at_random_points_decode_to_the_same_messages()
    {
        Stream.SelectMany(items =>
        {
            var bytes = items.SelectMany(i => FrameCodec.Encode(i.Message, i.Method)).ToArray();
            return Gen.Int[0, bytes.Length].Array[0, 24].Select(cuts => (items, bytes, cuts));
        }).Sample(sample =>
        {
            var (items, bytes, cuts) = sample;
            var chunks = Segments.SplitAt(bytes, cuts);

            // All at once, as one multi-segment buffer.
            var whole = Segments.Create(chunks);
            var messages = new List<Message>();
            Assert.Equal(FrameReadStatus.NeedMore, TestFrames.ReadAll(ref whole, Compression.Supported, messages));
            Assert.True(whole.IsEmpty);
            AssertSameMessages(items, messages);

            // Chunk by chunk, keeping the unread rest as a pipe would.
            var pending = new List<ReadOnlyMemory<byte>>();
            messages.Clear();
            foreach (var chunk in chunks)
            {
                pending.Add(chunk);
                var buffer = Segments.Create(pending);
                Assert.Equal(FrameReadStatus.NeedMore, TestFrames.ReadAll(ref buffer, Compression.Supported, messages));
                pending = Segments.ChunksOf(buffer);
            }

            Assert.Equal(0, pending.Sum(p => p.Length));
            AssertSameMessages(items, messages);
        }, iter: 150);
    }

    [Fact]
    public void Random_bodies_are_format_errors()
    {
        Gen.Frequency((4, Gen.Byte.Array[0, 200]), (1, Gen.Byte.Array[1000, 3000])).Sample(body =>
        {
            Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(body), Compression.Supported));
        }, iter: 2000);
    }

    [Fact]
    public void Corrupted_frames_fail_with_a_format_error_or_decode_to_the_same_message()
    {
        Gen.Select(WireGen.Message, WireGen.Method, Gen.Int.Array[1, 4], Gen.Byte).Sample((message, method, positions, xor) =>
        {
            var body = FrameCodec.Encode(message, method)[FrameCodec.HeaderLength..];
            foreach (var position in positions)
            {
                body[(int)((uint)position % body.Length)] ^= xor == 0 ? (byte)1 : xor;
            }

            try
            {
                TestFrames.AssertSame(message, FrameCodec.DecodeBody(new ReadOnlySequence<byte>(body), Compression.Supported));
            }
            catch (MsgFormatException)
            {
                // the digest or a decompressor rejected it
            }
        }, iter: 1500);
    }

    private static void AssertSameMessages((Message Message, CompressionMethod? Method)[] expected, List<Message> actual)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            TestFrames.AssertSame(expected[i].Message, actual[i]);
        }
    }
}
