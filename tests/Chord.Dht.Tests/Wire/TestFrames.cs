using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>Hand-built frames and a read loop, for decoder tests.</summary>
internal static class TestFrames
{
    /// <summary>An uncompressed body for the packed message <paramref name="packed"/>: <c>SHA-256(S) || S</c>.</summary>
    public static byte[] BodyFor(ReadOnlySpan<byte> packed) => [.. SHA256.HashData(packed), .. packed];

    /// <summary>An uncompressed body for <paramref name="message"/>, whatever it holds (it need not be a valid message).</summary>
    public static byte[] BodyFor(MsgValue message) => BodyFor(MsgPack.Serialize(message));

    /// <summary>A length header followed by <paramref name="body"/>.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> body)
    {
        var frame = new byte[FrameCodec.HeaderLength + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame.AsSpan(FrameCodec.HeaderLength));
        return frame;
    }

    /// <summary>A bare 4-byte length header.</summary>
    public static byte[] Header(uint declaredLength)
    {
        var header = new byte[FrameCodec.HeaderLength];
        BinaryPrimitives.WriteUInt32BigEndian(header, declaredLength);
        return header;
    }

    /// <summary>Reads a buffer that must hold exactly one whole frame, and decodes it.</summary>
    public static Message DecodeOne(byte[] frame, IReadOnlyList<CompressionMethod> methods)
    {
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.Equal(FrameReadStatus.Frame, FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out var declared));
        Assert.Equal(frame.Length - FrameCodec.HeaderLength, declared);
        Assert.True(buffer.IsEmpty);
        return FrameCodec.DecodeBody(body, methods);
    }

    /// <summary>Takes and decodes frames off the front of <paramref name="buffer"/> until none is whole; returns why it stopped.</summary>
    public static FrameReadStatus ReadAll(ref ReadOnlySequence<byte> buffer, IReadOnlyList<CompressionMethod> methods, List<Message> into)
    {
        while (true)
        {
            var status = FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out _);
            if (status != FrameReadStatus.Frame)
            {
                return status;
            }

            into.Add(FrameCodec.DecodeBody(body, methods));
        }
    }

    /// <summary>Asserts that two messages are the same message: same fields, same packed bytes, same id.</summary>
    public static void AssertSame(Message expected, Message actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.Sender, actual.Sender);
        Assert.Equal(expected.Time, actual.Time);
        Assert.Equal<IEnumerable<MsgValue>>(expected.Payload, actual.Payload);
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(WireVectors.ToHex(expected.Packed.Span), WireVectors.ToHex(actual.Packed.Span));
    }
}
